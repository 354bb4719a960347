"""Clocks for the engine and the simulator: the system's (optionally sped up) and a manual one for tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dialer.retrying import QuietLog

log = logging.getLogger("ringback.clock")
# A callback failing again and again (the database away under every provider report) is told once a
# second with a count, its statement's parameters left out.
_quiet = QuietLog(log)

Callback = Callable[[], Awaitable[None]]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def call_later(self, delay: float, callback: Callback) -> Timer: ...


class SystemClock:
    """Real time, optionally running `speed` times faster (for demos and end-to-end tests)."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self._origin = datetime.now(UTC)
        self._mono = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(time.monotonic() - self._mono) * self.speed)

    def call_later(self, delay: float, callback: Callback) -> Timer:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, delay) / self.speed, self._spawn, callback)

    def _spawn(self, callback: Callback) -> None:
        task = asyncio.ensure_future(_guarded(callback))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class FastTimers(SystemClock):
    """Real time for every timestamp, timers `speed` times faster: the simulated people at the other end
    of `RINGBACK_SIMULATOR_SPEED`'s calls answer, talk and hang up sooner, while what the server writes
    (leads, timelines, the audit log) is stamped with the real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


async def _guarded(callback: Callback) -> None:
    try:
        await callback()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        _quiet.error("timer callback", exc, now=time.monotonic())


class _ManualTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time moves only when a test calls `advance`; due callbacks run one after another, in time order."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
        self._heap: list[tuple[datetime, int, _ManualTimer, Callback]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    def call_later(self, delay: float, callback: Callback) -> Timer:
        timer = _ManualTimer()
        when = self._now + timedelta(seconds=max(0.0, delay))
        heapq.heappush(self._heap, (when, next(self._seq), timer, callback))
        return timer

    async def advance(self, seconds: float = 0.0) -> None:
        target = self._now + timedelta(seconds=seconds)
        while self._heap and self._heap[0][0] <= target:
            when, _, timer, callback = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            await _guarded(callback)
        self._now = target

    async def run_until(self, done: Callable[[], Awaitable[bool]], *, limit: float = 3600) -> None:
        """Run timers in order until `done()` is true; fails if `limit` simulated seconds pass first."""
        deadline = self._now + timedelta(seconds=limit)
        while not await done():
            pending = [entry for entry in self._heap if not entry[2].cancelled]
            # The heap's order holds for all its entries, not for the live ones alone: take their minimum.
            first = min(pending)[0] if pending else None
            if first is None or first > deadline:
                raise TimeoutError(f"not done after {limit} simulated seconds")
            await self.advance((first - self._now).total_seconds())
