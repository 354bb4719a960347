"""Provider reports that could not be applied when they came: never dropped, but held and applied later.

A report whose step failed (after its conflicts were tried again), or whose lead could not even be looked
up (the database away), is written to `held_events` and the provider is answered as if all went well: it
would not send it again. Any engine applies held reports later, oldest first: the step that applies one
deletes its row in the same transaction, so of two engines trying, one applies it and the other finds it
gone. A report that fails again waits longer each time. While the database cannot even take the row, the
report is kept in memory and written as soon as it can be, and before any step.

Whatever work steps a lead next (another report, its deadline, a held report's own turn) first applies
every report held for it, oldest first, in its transaction (`store_held.take_held_of`), and the machine
judges them together: a manager's key press held during an outage and their hang-up after it never dial
the visitor into a call that is over, and a visitor's answer held is never overtaken by their end.

A late report is harmless: a leg only moves forward (`dialer/core/legs.py`), so a ringing or answered
report held while the leg ended meanwhile changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dialer import metrics
from dialer.clock import Clock, Timer
from dialer.core import event_codec
from dialer.core.events import LegEvent
from dialer.core.machine import Trigger
from dialer.engine import store_held
from dialer.engine.inbox import Work
from dialer.retrying import Backoff, QuietLog

log = logging.getLogger("ringback.engine")

PAGE = 100  # held reports taken in one go
FIRST_TRY = 1.0  # seconds after a report was held before it is tried again (then 2, 4… up to CAP)
CAP = 60.0

Submit = Callable[[str, Work], Awaitable[Any]]
LeadOf = Callable[[str], Awaitable[str | None]]


class HeldEvents:
    def __init__(self, database: AsyncEngine, slots: asyncio.Semaphore, clock: Clock, submit: Submit,
                 lead_of: LeadOf) -> None:
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self._slots = slots
        self.clock = clock
        self._submit = submit
        self._lead_of = lead_of
        self._unstored: deque[tuple[str | None, LegEvent, str]] = deque()
        self._writing = asyncio.Lock()
        self._applying: set[int] = set()  # held ids being applied by this engine now
        self._timer: Timer | None = None
        self._backoff = Backoff(first=FIRST_TRY, cap=CAP)
        self._quiet = QuietLog(log)
        self.running = False

    async def keep(self, lead_id: str | None, event: LegEvent, exc: BaseException) -> None:
        """Hold a report that could not be applied now."""
        reason = type(exc).__name__  # the type only: a database error's text names the statement's values
        log.warning("report on leg %s not applied now (%s): held, to be applied later", event.leg_id, reason)
        self._unstored.append((lead_id, event, reason))
        metrics.EVENTS_STORED.inc()
        await self._store()
        self._arm(FIRST_TRY)

    async def _store(self) -> bool:
        """Write the reports kept in memory; False while the database cannot take them."""
        try:
            await self.write_kept()
        except Exception as exc:
            self._quiet.error("holding a report", exc, now=time.monotonic(), trace=False)
            self._arm(self._backoff.failed())
            return False
        return True

    async def write_kept(self, lead_ids: Collection[str] | None = None) -> None:
        """Write the reports kept in memory, in the order they came (one writer at a time: each is written
        once); raises what the database raised. The engine calls it before a step on `lead_ids` when
        some are about them (or about a lead not known yet), so that the step, which takes its leads'
        held reports (`store_held.take_held_of`), takes every earlier one."""
        if lead_ids is not None and not any(lead is None or lead in lead_ids for lead, _, _ in self._unstored):
            return
        if not self._unstored:
            return
        async with self._writing:
            while self._unstored:
                lead_id, event, reason = self._unstored[0]
                now = self.clock.now()
                async with self._slots, self.autocommit.connect() as conn:
                    await store_held.hold(conn, lead_id, event, reason, now, now + timedelta(seconds=FIRST_TRY))
                self._unstored.popleft()

    def _arm(self, delay: float) -> None:
        if self._timer is None and self.running:
            self._timer = self.clock.call_later(delay, self._on_timer)

    async def _on_timer(self) -> None:
        self._timer = None
        await self.apply_due()

    async def apply_due(self) -> int:
        """Apply the held reports whose time has come (and write those kept in memory first); returns
        how many were handed to the engine."""
        if not self.running or not await self._store():
            return 0
        now = self.clock.now()
        try:
            async with self._slots, self.autocommit.connect() as conn:
                rows = await store_held.held_due(conn, now, PAGE)
        except Exception as exc:
            self._quiet.error("reading held reports", exc, now=time.monotonic(), trace=False)
            self._arm(self._backoff.failed())
            return 0
        self._backoff.succeeded()
        rows = [row for row in rows if row.id not in self._applying]
        self._applying.update(row.id for row in rows)
        if len(rows) == PAGE:
            self._arm(0)
        await asyncio.gather(*(self._apply(row) for row in rows))
        return len(rows)

    async def _apply(self, row: Any) -> None:
        lead_id = row.lead_id
        try:
            event = event_codec.decode(row.event)
            if lead_id is None:
                lead_id = await self._lead_of(row.leg_id)
            if lead_id is None:
                log.warning("held report for an unknown leg %s dropped", row.leg_id)
                async with self._slots, self.autocommit.connect() as conn:
                    await store_held.take_held(conn, [row.id])
                return
            await self._submit(lead_id, Work(Trigger.LEG, event, held_id=row.id))
            metrics.EVENTS_REPLAYED.inc()
        except Exception as exc:
            delay = min(CAP, FIRST_TRY * 2.0 ** (row.tries + 1))
            try:
                async with self._slots, self.autocommit.connect() as conn:
                    await store_held.held_again(conn, row.id, lead_id, self.clock.now() + timedelta(seconds=delay),
                                           type(exc).__name__)
            except Exception as again:
                self._quiet.error("holding a report again", again, now=time.monotonic(), trace=False)
            self._arm(delay)
        finally:
            self._applying.discard(row.id)

    async def stop(self) -> None:
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def reports_by_lead(rows: list[Any]) -> dict[str, list[LegEvent]]:
    """Held reports taken by a step (`store_held.take_held_of`: id, lead, leg, event; oldest first), each
    lead's in order. One that cannot be read is dropped, saying so: it could never be applied."""
    found: dict[str, list[LegEvent]] = {}
    for held_id, lead_id, leg_id, data in rows:
        try:
            event = event_codec.decode(data)
        except (KeyError, TypeError, ValueError):
            log.warning("held report %s on leg %s cannot be read: dropped", held_id, leg_id)
            continue
        if lead_id is not None:
            found.setdefault(lead_id, []).append(event)
    return found
