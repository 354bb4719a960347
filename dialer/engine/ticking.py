"""The engine's clock work: when to look for due leads next (`_schedule`), the tick that steps them a
page at a time, the poll's slower chores, and waiting while the database is away (a growing pause that
nudges do not hurry, the same error logged once a second at most).

A part of `Engine` (`engine.py` wires it); the attributes it reads are declared below.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.clock import Clock, Timer
from dialer.core.machine import Trigger
from dialer.engine import store
from dialer.engine.dialing import CLAIM_GRACE
from dialer.engine.held import HeldEvents
from dialer.engine.inbox import Inbox, Work
from dialer.engine.queue import QueueWaker
from dialer.retrying import Backoff, QuietLog

DUE_BATCH = 200
RETRY_DELAY = 1.0  # seconds before due leads whose steps all failed are looked at again
# With polling on, at most this often (seconds): held provider reports are tried again, and sites with a
# free manager and a queued lead are looked for (a safety net under the queue's own wake-ups; no writes).
HELD_EVERY = 1.0
QUEUE_SAFETY_EVERY = 10.0


class Ticking:
    running: bool
    clock: Clock
    poll_interval: float | None
    ticked_at: float | None
    inbox: Inbox
    held: HeldEvents
    queue: QueueWaker
    autocommit: AsyncEngine
    _slots: asyncio.Semaphore
    _quiet: QuietLog
    _backoff: Backoff
    _timer: Timer | None
    _timer_at: datetime | None
    _not_before: datetime | None
    _ticking: set[asyncio.Task[Any]]
    _last: dict[str, datetime]

    if TYPE_CHECKING:  # the other parts'
        def _pump(self) -> None: ...
        async def recover_pending_legs(self, older_than: float) -> None: ...

    def _schedule(self, delay: float) -> None:
        if not self.running:
            return
        now = self.clock.now()
        if self._not_before is not None and self._not_before > now:
            delay = max(delay, (self._not_before - now).total_seconds())
        when = now + timedelta(seconds=max(0.0, delay))
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.clock.call_later(delay, self._tick)

    async def _tick(self) -> None:
        self._timer, self._timer_at = None, None
        if not self.running:
            return
        task = asyncio.current_task()  # a timer's callback runs in a task of its own
        if task is not None:
            self._ticking.add(task)
        try:
            await self._tick_once()
        finally:
            self._ticking.discard(task)

    async def _tick_once(self) -> None:
        claimed: list[Work] = []
        try:
            claimed = await self._step_due()
            if self.poll_interval is not None:
                await self._chores()
            # The next wake-up is set as soon as these steps are committed, while their calls are placed.
            # When due leads were found but none could be stepped (a step that keeps failing), wait a
            # moment rather than look again at once, over and over.
            stuck = bool(claimed) and all(work.committed.result() is None for work in claimed)
            await self._schedule_next(RETRY_DELAY if stuck else 0.0)
        except Exception as exc:
            # Whatever failed (the database away, most likely), the engine looks again later: a worker
            # never stops for good.
            self._trouble(exc)
        else:
            self.ticked_at = time.monotonic()  # `/readyz` tells whether the engine is ticking
            if self._backoff.failures:
                self._quiet.recovered("engine tick", self._backoff.succeeded())
            self._not_before = None
        await asyncio.gather(*(work.done for work in claimed), return_exceptions=True)

    def _trouble(self, exc: Exception) -> None:
        """A tick failed: logged (the same error once a second at most), and the next one set after a
        growing wait."""
        self._quiet.error("engine tick", exc, now=time.monotonic())
        delay = self._backoff.failed()
        if self._timer is not None:  # a nudge during the tick does not hurry the next try
            self._timer.cancel()
            self._timer, self._timer_at = None, None
        self._not_before = None
        self._schedule(delay)
        self._not_before = self.clock.now() + timedelta(seconds=delay)

    async def _chores(self) -> None:
        """The poll's slower work, each at most once per its interval (not on every one of many ticks
        under load): dials never confirmed, held reports, and the queue's safety net."""
        if self._due("recover", self.poll_interval or 0):
            await self.recover_pending_legs(older_than=CLAIM_GRACE)
        if self._due("held", HELD_EVERY):
            await self.held.apply_due()
        if self._due("queue", QUEUE_SAFETY_EVERY):
            async with self._slots, self.autocommit.connect() as conn:
                self.queue.wake(await store.sites_waiting(conn))

    def _due(self, chore: str, every: float) -> bool:
        now = self.clock.now()
        last = self._last.get(chore)
        if last is not None and (now - last).total_seconds() < every:
            return False
        self._last[chore] = now
        return True

    async def _schedule_next(self, at_least: float = 0.0) -> None:
        async with self._slots, self.autocommit.connect() as conn:
            wake = await store.next_wake(conn)
        delays = [] if self.poll_interval is None else [self.poll_interval]
        if wake is not None:
            delays.append(max(at_least, (wake - self.clock.now()).total_seconds()))
        if delays:
            self._schedule(min(delays))

    async def run_due(self) -> int:
        """Advance every lead whose wake-up time has come; returns how many were looked at."""
        claimed = await self._step_due()
        await asyncio.gather(*(work.done for work in claimed), return_exceptions=True)
        return len(claimed)

    async def _step_due(self) -> list[Work]:
        """Step the due leads, a page at a time; returns once the steps are committed, with the work
        whose calls may still be being placed."""
        claimed: list[Work] = []
        while self.running:
            async with self._slots, self.autocommit.connect() as conn:
                ids = await store.due_lead_ids(conn, self.clock.now(), DUE_BATCH)
            work = [self.inbox.put(lead_id, Work(Trigger.WAKE)) for lead_id in ids]
            self._pump()
            await asyncio.gather(*(w.committed for w in work), return_exceptions=True)
            claimed.extend(work)
            if len(ids) < DUE_BATCH:
                break
        return claimed
