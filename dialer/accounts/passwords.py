"""Password hashing off the event loop: argon2 runs in a small pool of worker threads.

argon2 is slow on purpose (tens of milliseconds and 64 MiB per hash). On the event loop, which the engine
shares, a flood of sign-ins would stall every call in progress; in the pool it costs at most `WORKERS`
cores, and the loop stays free. The pool is bounded twice: `WORKERS` threads, and at most `MAX_WAITING`
hashes queued behind them. Beyond that `Busy` is raised at once (the sign-in page answers 503), so a
flood cannot pile up unbounded work or memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

WORKERS = 2
MAX_WAITING = 64
THREAD_PREFIX = "ringback-password"
T = TypeVar("T")

hasher = PasswordHasher()


class Busy(Exception):
    """Too many passwords are being checked at once: try again in a moment."""


class PasswordPool:
    def __init__(self, workers: int = WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=THREAD_PREFIX)
        self._capacity = workers + max_waiting
        self._pending = 0
        self._lock = threading.Lock()  # the pool is shared by every event loop of the process

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._pending >= self._capacity:
                raise Busy
            self._pending += 1
        try:
            future: Future[T] = self._executor.submit(fn, *args)
        except BaseException:
            self._done()
            raise
        # Counted until the thread is done, even if the awaiting request is cancelled meanwhile.
        future.add_done_callback(lambda _: self._done())
        return await asyncio.wrap_future(future)

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1


pool = PasswordPool()


def _verify(stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password(stored: str, password: str) -> bool:
    """Blocking: for command-line use. The server awaits `verify`."""
    return _verify(stored, password)


async def verify(stored: str, password: str) -> bool:
    return await pool.run(_verify, stored, password)


async def hash_password(password: str) -> str:
    return await pool.run(hasher.hash, password)


def needs_rehash(stored: str) -> bool:
    return hasher.check_needs_rehash(stored)


# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
DUMMY_HASH = hasher.hash("not-a-real-password")
