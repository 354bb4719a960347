"""Living through repeated failures (the database away for a while): how long to wait before trying
again (`Backoff`), and a log that says the same error once a second at most (`QuietLog`).

    backoff = Backoff()                 # 1 s, 2 s, 4 s … 30 s at most, each ±25 %
    delay = backoff.failed()            # after a failure: wait this long
    backoff.succeeded()                 # back to normal
    quiet = QuietLog(log)
    quiet.error("tick", exc, now=time.monotonic())   # logged, or counted if said within the last second
    database_down(exc)                  # the database (or its pool) could not be reached
"""

from __future__ import annotations

import logging
import random
import socket

import asyncpg  # type: ignore[import-untyped]  # no type information shipped
import sqlalchemy.exc

# What reaching the database (or its pool) fails with: SQLAlchemy's wrapped errors, asyncpg's own and the
# socket's when connecting, a pool that waited too long.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


# SQLSTATEs (or their classes) of a PostgreSQL that cannot do it just now: a connection exception, too
# many clients or other want of resources, shutting down or starting up, and a transaction it gave up
# (deadlock, serialization failure), which is tried again whole. SQLAlchemy wraps asyncpg's errors for
# these in a plain DBAPIError, which none of the classes above catches.
TRANSIENT_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "40001", "40P01")


def database_down(exc: BaseException) -> bool:
    """The database (or its pool) could not be reached, or could not do it just now: try again later."""
    if isinstance(exc, DATABASE_DOWN):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        state = getattr(exc.orig, "sqlstate", None)
        return isinstance(state, str) and state.startswith(TRANSIENT_SQLSTATES)
    return False


class Backoff:
    """Jittered exponential backoff: `first` seconds after the first failure, doubling up to `cap`."""

    def __init__(self, first: float = 1.0, cap: float = 30.0, jitter: float = 0.25,
                 rand: random.Random | None = None) -> None:
        self.first, self.cap, self.jitter = first, cap, jitter
        self.failures = 0
        self._rand = rand or random.Random()

    def failed(self) -> float:
        """One more failure in a row: seconds to wait before the next try."""
        self.failures += 1
        base: float = min(self.cap, self.first * 2.0 ** min(self.failures - 1, 30))
        spread = base * self.jitter
        return min(self.cap, max(0.0, base + self._rand.uniform(-spread, spread)))

    def succeeded(self) -> int:
        """A try went well: back to normal. Returns how many failures in a row it ended."""
        failures, self.failures = self.failures, 0
        return failures


def _what(exc: BaseException) -> str:
    """The error, as told and as told apart from others. A database error's text names its statement's
    parameters (timestamps, ids: a new error every time, and a phone number is never logged): they are
    left out, so the same failure of the same statement is one error however it was called."""
    if isinstance(exc, sqlalchemy.exc.StatementError):
        exc.hide_parameters = True
    return f"{type(exc).__qualname__}: {exc}"


class QuietLog:
    """Logs an error at most once per `every` seconds for the same place and error; the repeats in
    between are counted and the count told with the next one logged."""

    def __init__(self, log: logging.Logger, every: float = 1.0) -> None:
        self.log, self.every = log, every
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def error(self, where: str, exc: BaseException, *, now: float, detail: str = "", trace: bool = True) -> bool:
        """Log `exc` met at `where` (with its traceback, and `detail`, which does not make it another
        error) unless the same was logged less than `every` seconds before `now`; returns whether it
        was logged. With `trace=False` only the error's type is told (its text may hold what a request
        carried: a database error names the statement's parameters) and errors of one type are one."""
        key = (where, _what(exc) if trace else type(exc).__qualname__)
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        more = f" ({suppressed} more like it not logged)" if suppressed else ""
        if trace:
            self.log.error("%s failed%s%s", where, f" ({detail})" if detail else "", more, exc_info=exc)
        else:
            self.log.error("%s failed%s: %s%s", where, f" ({detail})" if detail else "", key[1], more)
        if len(self._last) > 1000:  # errors whose text varies (an id in it) must not grow this for good
            self._last = {k: t for k, t in self._last.items() if now - t < self.every}
        return True

    def recovered(self, where: str, failures: int) -> None:
        """`where` works again after `failures` failures in a row; what was counted is forgotten."""
        if failures:
            self.log.warning("%s works again after %d failure(s)", where, failures)
        for key in [k for k in self._suppressed if k[0] == where]:
            del self._suppressed[key]
        for key in [k for k in self._last if k[0] == where]:
            del self._last[key]
