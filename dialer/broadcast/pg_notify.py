"""Live updates across processes through PostgreSQL's LISTEN/NOTIFY, for installations without Redis:
the same interface as the in-memory and Redis broadcasts.

Each process holds one connection of its own (asyncpg, outside SQLAlchemy's pool) that LISTENs on one
PostgreSQL channel, `ringback`, and also carries what the process publishes. Every message goes to that one
channel with our channel name in front of it (`lead:…\\n{json}`), so a WebSocket coming or going costs no
LISTEN or UNLISTEN round trip and channel names need not fit PostgreSQL's 63-byte identifiers; each
process hands a message to its local subscribers of that name, and drops (without decoding it) one nobody
here follows. PostgreSQL delivers a session's own notifications to it, so the process that publishes
hears itself, as with Redis. Messages published at the same moment go out in one statement, in order.

As with Redis, messages are not stored and correctness never depends on them (the database holds the
truth; the visitor's live stream re-reads it after a quiet while, engines poll). While the connection is
lost, `publish` drops the message (logged, at most once a minute) and `subscribe` returns at once with a
subscription that receives nothing until it is back; a task reconnects every second and LISTENs again.
A connection that goes silent (a dead network path) is found by a ping every few seconds.
https://www.postgresql.org/docs/current/sql-notify.html ("…if the same session executes NOTIFY on a
channel it is listening on, it receives the notification"; payloads shorter than 8000 bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no type information shipped
from sqlalchemy.engine import make_url

from dialer import metrics
from dialer.broadcast.memory import Message, SubscriberQueue, Subscribers, encode

log = logging.getLogger("ringback.pg_notify")

CHANNEL = "ringback"  # NOTIFY reaches only sessions on the same database: one name is enough
MAX_PAYLOAD = 7999  # bytes; PostgreSQL refuses 8000 and more
RECONNECT_DELAY = 1.0  # seconds between attempts while the database is unreachable
CONNECT_TIMEOUT = 5.0
PING_EVERY = 5.0  # seconds between two checks that the listening connection still works
PING_TIMEOUT = 5.0
CONFIRM_TIMEOUT = 2.0  # a subscriber waits at most this long for the connection to be listening
PUBLISH_TIMEOUT = 2.0  # a publisher waits at most this long for its message to be sent
LOG_EVERY = 60.0  # seconds between two log lines about dropped publishes

_NOTIFY = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"  # in the array's order


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL (`postgresql+asyncpg://…`) as asyncpg's own connection string."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgNotifyBroadcast:
    def __init__(self, database_url: str) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._conn: Any = None
        self._listening = asyncio.Event()
        self._query = asyncio.Lock()  # one statement at a time on the connection (asyncpg's rule)
        self._subscribers = Subscribers()
        self._keeper: asyncio.Task[None] | None = None
        self._outbox: list[tuple[str, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._dropped = 0
        self._logged_at: float | None = None
        self._closed = False
        self._starting_until = 0.0  # time.monotonic() until which a publish waits for the first connection

    # the interface ----------------------------------------------------------------------------------

    async def publish(self, channel: str, message: Message) -> None:
        """Send a message to every subscriber of `channel` in any process; never raises (while the
        connection is lost the message is lost)."""
        self._start()
        payload = f"{channel}\n{encode(message)}"
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("a message on %s is too long for NOTIFY (%d bytes): dropped", channel, len(payload.encode()))
            return
        wait = self._starting_until - time.monotonic()
        if self._conn is None and wait > 0:
            # Just started (the first publish of a web process, a nudge): wait a moment for the connection;
            # later, while it is lost, a publish does not wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), wait)
        if self._conn is None:
            self._drop("not connected")
            return
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((payload, sent))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="pg-notify-send")
        try:
            await asyncio.wait_for(asyncio.shield(sent), PUBLISH_TIMEOUT)
        except TimeoutError:
            self._drop("timed out")
        except Exception as exc:  # the connection failed under it: news, not truth
            self._drop(type(exc).__name__)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[SubscriberQueue]:
        self._start()
        sub = self._subscribers.join(channel)
        try:
            # Listening before the caller reads the database, so nothing published after its read is missed.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), CONFIRM_TIMEOUT)
            yield sub
        finally:
            self._subscribers.leave(channel, sub)

    async def close(self) -> None:
        self._closed = True
        for task in (self._keeper, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._keeper = self._sender = None
        for _, sent in self._outbox:
            if not sent.done():
                sent.cancel()
        self._outbox.clear()
        self._subscribers.clear()

    # the one connection -----------------------------------------------------------------------------

    def _start(self) -> None:
        if self._keeper is None and not self._closed:
            self._starting_until = time.monotonic() + CONFIRM_TIMEOUT
            self._keeper = asyncio.create_task(self._keep(), name="pg-notify")

    async def _keep(self) -> None:
        """Hold the listening connection: connect, LISTEN, ping; after any failure, again a second later."""
        failing = False  # an outage is logged when it starts and when it ends, not at every retry
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._heard)
                self._conn = conn
                self._starting_until = 0.0
                self._listening.set()
                if failing:
                    log.warning("listening for updates in PostgreSQL works again")
                    failing = False
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), PING_EVERY)
                    if not lost.is_set():
                        async with self._query:
                            await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_TIMEOUT)
                raise ConnectionError("the connection was closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the keeper outlives any one failure, or updates stop for good
                metrics.PG_NOTIFY_FAILURES.labels("listen").inc()
                if not failing:
                    log.warning("listening for updates in PostgreSQL failed (%s); retrying every %.0f s",
                                type(exc).__name__, RECONNECT_DELAY)
                failing = True
            finally:
                self._listening.clear()
                self._conn = None
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _send(self) -> None:
        """Send what is waiting in one statement, in order, and again while more came meanwhile."""
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                async with self._query:
                    if self._conn is None:
                        raise ConnectionError("not connected")
                    await asyncio.wait_for(self._conn.execute(_NOTIFY, CHANNEL, [p for p, _ in batch]),
                                           PUBLISH_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                for _, sent in batch:
                    if not sent.done():
                        sent.set_exception(exc)
                        sent.exception()  # retrieved here: the publisher may have stopped waiting
            else:
                for _, sent in batch:
                    if not sent.done():
                        sent.set_result(None)

    def _drop(self, why: str) -> None:
        metrics.PG_NOTIFY_FAILURES.labels("publish").inc()
        self._dropped += 1
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY:
            log.warning("publishing through PostgreSQL failed (%s): %d update(s) dropped", why, self._dropped)
            self._logged_at, self._dropped = now, 0

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        channel, _, data = payload.partition("\n")
        if channel not in self._subscribers:
            return
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("ignored a message on %s that is not JSON", channel)
            return
        self._subscribers.deliver(channel, message)
