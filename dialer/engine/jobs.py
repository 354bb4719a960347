"""Work asked of the provider later, kept in the database (`provider_jobs`) so that a restart loses none
of it: the price of a call or a text, which Twilio fills in only a while after the end ("may not be
immediately available": https://www.twilio.com/docs/voice/api/call-resource, `price`).

A job is written once per call or message (a duplicated callback finds it there). Any engine runs a due
job after claiming it with a conditional update; the claim lapses after `CLAIM_SECONDS`, so a job whose
engine died is taken up by another. A price not there yet is asked again after a growing delay, until the
delays run out. On start, ended answered calls still without a price and without a job get one (a price
callback that came just before a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.clock import Clock, Timer
from dialer.core.events import LegEvent, PriceKnown
from dialer.db.models import CallLeg, ProviderJob, table_of
from dialer.engine import texting
from dialer.engine.dialing import engine_name
from dialer.retrying import QuietLog

log = logging.getLogger("ringback.jobs")

CLAIM_SECONDS = 120.0  # a claimed job not finished by then is another engine's to take
POLL_SECONDS = 30.0  # jobs of other engines, and of engines gone, are looked for this often
BATCH = 20
SWEEP_DAYS = 2  # ended calls this recent without a price get a job on start

jobs_table = table_of(ProviderJob)
legs_table = table_of(CallLeg)
Fetch = Callable[[str], Awaitable[tuple[Decimal, str] | None]]


class Jobs:
    def __init__(self, database: AsyncEngine, clock: Clock, provider: Any,
                 report: Callable[[LegEvent], Awaitable[None]], delays: tuple[float, ...]) -> None:
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self.clock = clock
        self.provider = provider
        self.report = report  # a call's price goes in as a provider report (the engine applies it)
        self.delays = delays or (5.0,)
        self.name = engine_name()
        self.running = False
        self._closed = False  # stopped: nothing more is written (the process is shutting down)
        self._timer: Timer | None = None
        self._timer_at: datetime | None = None
        self._quiet = QuietLog(log)
        self._active = 0  # enqueues and ticks under way: `stop` waits for them
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        self._active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    # writing --------------------------------------------------------------------------------------

    async def enqueue(self, kind: str, subject: str, leg_id: str | None = None) -> bool:
        """Ask for this later (once per call or message); False when it was asked already, or when
        stopping (a call's price is then found by the next start's sweep)."""
        if self._closed:
            return False
        now = self.clock.now()
        due = now + timedelta(seconds=self.delays[0])
        try:
            async with self._working(), self.autocommit.connect() as conn:
                await conn.execute(insert(jobs_table).values(kind=kind, subject=subject, leg_id=leg_id, due_at=due,
                                                             attempts=0, created_at=now))
        except IntegrityError:
            return False
        self._wake_at(due)
        return True

    async def sweep(self) -> int:
        """Jobs for ended answered calls that have no price and no job (written just before a crash)."""
        since = self.clock.now() - timedelta(days=SWEEP_DAYS)
        query = (
            select(legs_table.c.id, legs_table.c.provider_sid)
            .where(legs_table.c.status == "ended", legs_table.c.price.is_(None),
                   legs_table.c.provider_sid.is_not(None), legs_table.c.answered_at.is_not(None),
                   legs_table.c.ended_at >= since)
            .where(~select(jobs_table.c.id).where(jobs_table.c.kind == "call_price",
                                                  jobs_table.c.subject == legs_table.c.provider_sid).exists())
        )
        async with self.autocommit.connect() as conn:
            found = list(await conn.execute(query))
        return sum([await self.enqueue("call_price", row.provider_sid, row.id) for row in found])

    # running --------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.running = True
        await self.sweep()
        self._wake_at(self.clock.now())

    async def stop(self) -> None:
        self.running, self._closed = False, True
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None
        await self._idle.wait()

    def _wake_at(self, when: datetime) -> None:
        if not self.running or (self._timer_at is not None and self._timer_at <= when):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.clock.call_later((when - self.clock.now()).total_seconds(), self._tick)

    async def _tick(self) -> None:
        self._timer, self._timer_at = None, None
        if not self.running:
            return
        try:
            async with self._working():
                await self.run_due()
        except Exception as exc:  # the database away: tried again at the next poll
            self._quiet.error("provider jobs", exc, now=self.clock.now().timestamp())
        self._wake_at(self.clock.now() + timedelta(seconds=POLL_SECONDS))

    async def run_due(self) -> int:
        """Claim the due jobs and run them; returns how many were run."""
        ran = 0
        while True:
            claimed = await self._claim()
            for job in claimed:
                await self._run(job)
            ran += len(claimed)
            if len(claimed) < BATCH:
                break
        await self._schedule_next()
        return ran

    async def _claim(self) -> list[Any]:
        now = self.clock.now()
        free = or_(jobs_table.c.claimed_until.is_(None), jobs_table.c.claimed_until <= now)
        due = select(jobs_table).where(jobs_table.c.done_at.is_(None), jobs_table.c.due_at <= now, free)
        claimed = []
        async with self.autocommit.connect() as conn:
            for job in list(await conn.execute(due.order_by(jobs_table.c.due_at).limit(BATCH))):
                took = await conn.execute(
                    update(jobs_table).where(jobs_table.c.id == job.id, jobs_table.c.done_at.is_(None), free)
                    .values(claimed_by=self.name, claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
                )
                if took.rowcount == 1:
                    claimed.append(job)
        return claimed

    async def _run(self, job: Any) -> None:
        fetch: Fetch | None = getattr(self.provider, "fetch_call_price" if job.kind == "call_price"
                                      else "fetch_text_price", None)
        found = await fetch(job.subject) if fetch is not None else None
        now = self.clock.now()
        if found is not None:
            price, unit = found
            if job.kind == "call_price" and job.leg_id:
                await self.report(PriceKnown(job.leg_id, job.subject, price=price, unit=unit))
            elif job.kind == "text_price":
                async with self.autocommit.connect() as conn:
                    await texting.set_price(conn, job.subject, price, unit)
            await self._finish(job.id, now, None, attempts=job.attempts + 1)
            return
        attempts = job.attempts + 1
        if attempts >= len(self.delays):
            log.warning("the provider gave no price for %s in time; it keeps none", job.subject)
            await self._finish(job.id, now, "no price in time", attempts=attempts)
            return
        due = now + timedelta(seconds=self.delays[attempts])
        async with self.autocommit.connect() as conn:
            await conn.execute(update(jobs_table).where(jobs_table.c.id == job.id)
                               .values(attempts=attempts, due_at=due, claimed_by=None, claimed_until=None))
        self._wake_at(due)

    async def _finish(self, job_id: int, now: datetime, detail: str | None, *, attempts: int) -> None:
        async with self.autocommit.connect() as conn:
            await conn.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                               .values(done_at=now, detail=detail, attempts=attempts, claimed_until=None))

    async def _schedule_next(self) -> None:
        """Wake for the next job due that nobody holds (one another engine holds: when its claim lapses)."""
        query = (select(jobs_table.c.due_at, jobs_table.c.claimed_until).where(jobs_table.c.done_at.is_(None))
                 .order_by(jobs_table.c.due_at).limit(BATCH))
        async with self.autocommit.connect() as conn:
            rows = list(await conn.execute(query))
        now = self.clock.now()
        times = [max(row.due_at, row.claimed_until or row.due_at) for row in rows]
        if times:
            self._wake_at(max(min(times), now))
