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

CONFLICTS = {"40001": "a serialization failure", "40P01": "a deadlock"}  # PostgreSQL's SQLSTATEs
TRIES = 5
PAUSE = 0.05  # seconds: the pause before the n-th retry is up to n times this (real time, jittered)


def conflict(exc: BaseException) -> str | None:
    """What kind of conflict `exc` is (None: none)."""
    orig = getattr(exc, "orig", None)
    return CONFLICTS.get(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


async def retried(what: str, attempt: Callable[[], Awaitable[T]], tries: int = TRIES) -> T:
    """`attempt()`, tried again after a conflict (up to `tries` in all); any other error is raised."""
    for n in range(1, tries + 1):
        try:
            return await attempt()
        except Exception as exc:
            kind = conflict(exc)
            if n == tries or kind is None:
                raise
            log.info("%s met %s: trying again (%d of %d)", what, kind, n + 1, tries)
        await asyncio.sleep(random.uniform(0, PAUSE * n))
    raise AssertionError("unreachable")
