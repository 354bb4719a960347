"""Transactions the database gave up on because of another one (a deadlock, a serialization failure):
tried again at once, a few times, after a short random pause, with the work they carried kept.

The engine takes its locks in one order (`dialer/engine/store.py`), so deadlocks should not happen
among its own transactions; this is for whatever else shares the database, and for the rows whose
order a statement does not let us choose.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("ringback.engine")

T = TypeVar("T")

CONFLICTS = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected (PostgreSQL)
TRIES = 5
PAUSE = 0.05  # seconds: the pause before the n-th retry is up to n times this (real time, jittered)


def is_conflict(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in CONFLICTS or getattr(orig, "pgcode", None) in CONFLICTS


async def retried(what: str, attempt: Callable[[], Awaitable[T]], tries: int = TRIES) -> T:
    """`attempt()`, tried again after a conflict (up to `tries` in all); any other error is raised."""
    for n in range(1, tries + 1):
        try:
            return await attempt()
        except Exception as exc:
            if n == tries or not is_conflict(exc):
                raise
            log.info("%s met a conflict (%s): trying again (%d of %d)", what, type(getattr(exc, "orig", exc)).__name__,
                     n + 1, tries)
        await asyncio.sleep(random.uniform(0, PAUSE * n))
    raise AssertionError("unreachable")
