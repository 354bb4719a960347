"""Work asked of the provider later, kept in the database (`provider_jobs`) so that a restart loses none
of it: the price of a call or a text, which Twilio fills in only a while after the end ("may not be
immediately available": https://www.twilio.com/docs/voice/api/call-resource, `price`); and the recording
of a bridged visitor's call, whose only report is the `<Dial recordingStatusCallback>` webhook, a request
Twilio may fail to deliver (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides).

A job is written once per call or message (a duplicated callback finds it there); a recording's is written
by the engine's step that ends the visitor's leg, in its transaction (`keep_recordings`). Any engine runs
a due job after claiming it with a conditional update; the claim lapses after `CLAIM_SECONDS`, so a job
whose engine died is taken up by another. What is not there yet is asked again after a growing delay,
until the delays run out. A recording that was reported meanwhile makes its job a no-op (nothing is
asked); one that never turns up is given up with a line on the lead's timeline. On start, ended answered
calls still without a price, and recorded visitor legs still without a recording, that have no job get
one (written just before a crash, or before jobs existed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer.clock import Clock, Timer
from dialer.core.events import LegEvent, PriceKnown, RecordingReady
from dialer.db.models import CallLeg, Lead, LeadEvent, ProviderJob, Site, table_of
from dialer.engine import texting
from dialer.engine.dialing import engine_name
from dialer.retrying import QuietLog
from dialer.telephony.base import ProviderError

log = logging.getLogger("ringback.jobs")

CLAIM_SECONDS = 120.0  # a claimed job not finished by then is another engine's to take
POLL_SECONDS = 30.0  # jobs of other engines, and of engines gone, are looked for this often
BATCH = 20
SWEEP_DAYS = 2  # ended calls this recent without a price get a job on start
# A recording's report normally comes within seconds of the call's end; it is looked up from a minute on,
# and given up about an hour after.
RECORDING_DELAYS = (60.0, 120.0, 300.0, 900.0, 1800.0)
RECORDING = "recording"  # the job's kind: its subject is the call the recording is kept on
REPORTED = "reported"  # a recording job's detail when the recording's own report came first
NOT_FOUND = "recording of the visitor leg could not be found: the provider never reported it and lists none"

jobs_table = table_of(ProviderJob)
legs_table = table_of(CallLeg)
leads_table, sites_table, events_table = table_of(Lead), table_of(Site), table_of(LeadEvent)
Fetch = Callable[[str], Awaitable[tuple[Decimal, str] | None]]


class Jobs:
    def __init__(self, database: AsyncEngine, clock: Clock, provider: Any,
                 report: Callable[[LegEvent], Awaitable[None]], delays: tuple[float, ...], *,
                 recording_delays: tuple[float, ...] = RECORDING_DELAYS,
                 poll_seconds: float | None = POLL_SECONDS) -> None:
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self.clock = clock
        self.provider = provider
        # A call's price and a recording go in as provider reports (the engine applies them).
        self.report = report
        self.delays = delays or (5.0,)
        self.recording_delays = recording_delays or (60.0,)
        self.poll_seconds = poll_seconds  # None: only this engine's own jobs are run (tests)
        self.name = engine_name()
        self.running = False
        self._closed = False  # stopped: nothing more is written (the process is shutting down)
        self._swept = False
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
        due = now + timedelta(seconds=self._delays(kind)[0])
        try:
            async with self._working(), self.autocommit.connect() as conn:
                await conn.execute(insert(jobs_table).values(kind=kind, subject=subject, leg_id=leg_id, due_at=due,
                                                             attempts=0, created_at=now))
        except IntegrityError:
            return False
        self._wake_at(due)
        return True

    async def keep_recordings(self, conn: AsyncConnection, found: list[tuple[str, str]]) -> datetime | None:
        """In the caller's transaction (the step that ended these visitor legs): look up each leg's
        recording on its call (leg id, the call's sid) later, unless it is reported first. Returns when
        the first is due, for `wake` once committed."""
        if not found:
            return None
        now = self.clock.now()
        due = now + timedelta(seconds=self.recording_delays[0])
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        rows = [{"kind": RECORDING, "subject": sid, "leg_id": leg_id, "due_at": due, "attempts": 0,
                 "created_at": now} for leg_id, sid in found]
        await conn.execute(dialect.insert(jobs_table).values(rows).on_conflict_do_nothing())
        return due

    def wake(self, when: datetime | None) -> None:
        """Jobs were written due at `when` (and committed): run them then."""
        if when is not None:
            self._wake_at(when)

    def _delays(self, kind: str) -> tuple[float, ...]:
        return self.recording_delays if kind == RECORDING else self.delays

    async def sweep(self) -> int:
        """Jobs for ended answered calls that have no price and no job (written just before a crash), and
        for recorded visitor legs without a recording and without a job."""
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
            recorded = list(await conn.execute(_unrecorded(since)))
        priced = sum([await self.enqueue("call_price", row.provider_sid, row.id) for row in found])
        return priced + sum([await self.enqueue(RECORDING, row.parent_sid, row.id) for row in recorded])

    # running --------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.running = True
        self._wake_at(self.clock.now())  # the first tick sweeps, then runs what is due

    async def _sweep_once(self) -> None:
        if not self._swept:
            await self.sweep()
            self._swept = True  # once the database could be read (it may be away at start-up)

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
                await self._sweep_once()
                await self.run_due()
        except Exception as exc:  # the database away: tried again a while later, polling or not
            self._quiet.error("provider jobs", exc, now=self.clock.now().timestamp())
            self._wake_at(self.clock.now() + timedelta(seconds=self.poll_seconds or POLL_SECONDS))
        if self.poll_seconds is not None:
            self._wake_at(self.clock.now() + timedelta(seconds=self.poll_seconds))

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
        done = await (self._recording(job) if job.kind == RECORDING else self._price(job))
        now, attempts = self.clock.now(), job.attempts + 1
        if done:
            await self._finish(job.id, now, done if isinstance(done, str) else None, attempts=attempts)
            return
        delays = self._delays(job.kind)
        if attempts >= len(delays):
            await self._finish(job.id, now, await self._give_up(job, now), attempts=attempts)
            return
        due = now + timedelta(seconds=delays[attempts])
        async with self.autocommit.connect() as conn:
            await conn.execute(update(jobs_table).where(jobs_table.c.id == job.id)
                               .values(attempts=attempts, due_at=due, claimed_by=None, claimed_until=None))
        self._wake_at(due)

    async def _price(self, job: Any) -> bool:
        fetch: Fetch | None = getattr(self.provider, "fetch_call_price" if job.kind == "call_price"
                                      else "fetch_text_price", None)
        found = await fetch(job.subject) if fetch is not None else None
        if found is None:
            return False
        price, unit = found
        if job.kind == "call_price" and job.leg_id:
            await self.report(PriceKnown(job.leg_id, job.subject, price=price, unit=unit))
        elif job.kind == "text_price":
            async with self.autocommit.connect() as conn:
                await texting.set_price(conn, job.subject, price, unit)
        return True

    async def _recording(self, job: Any) -> bool | str:
        """Done when the leg has its recording already (its report came: nothing is asked, and the job
        says so), or once the provider lists one (reported like the callback, so the engine applies it
        once)."""
        async with self.autocommit.connect() as conn:
            kept = await conn.execute(select(legs_table.c.recording_url).where(legs_table.c.id == job.leg_id))
            if kept.scalar():
                return REPORTED
        try:
            urls = await self.provider.recordings(job.subject)
        except ProviderError as exc:
            log.info("listing the recordings of %s: %s", job.subject, exc.reason)
            return False
        if not urls:
            return False
        await self.report(RecordingReady(job.leg_id, None, url=urls[0]))
        return True

    async def _give_up(self, job: Any, now: datetime) -> str:
        if job.kind != RECORDING:
            log.warning("the provider gave no price for %s in time; it keeps none", job.subject)
            return "no price in time"
        log.warning("no recording of call %s turned up; the owner is told on the lead's timeline", job.subject)
        async with self.autocommit.connect() as conn:
            lead_id = (await conn.execute(select(legs_table.c.lead_id).where(legs_table.c.id == job.leg_id))).scalar()
            if lead_id is not None:
                await conn.execute(insert(events_table).values(lead_id=lead_id, at=now, kind="recording",
                                                               status=None, leg_id=job.leg_id, detail=NOT_FOUND))
        return "no recording in time"

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


def _unrecorded(since: datetime) -> Any:
    """Visitor legs that talked and ended since `since` on a site that records calls, with no recording
    and no recording job, each with the sid of the call that dialed them (`parent_sid`)."""
    visitor, parent = legs_table.alias("visitor"), legs_table.alias("parent")
    return (
        select(visitor.c.id, parent.c.provider_sid.label("parent_sid"))
        .select_from(visitor.join(parent, parent.c.id == visitor.c.bridged_to)
                     .join(leads_table, leads_table.c.id == visitor.c.lead_id)
                     .join(sites_table, sites_table.c.id == leads_table.c.site_id))
        .where(visitor.c.role == "visitor", visitor.c.status == "ended", visitor.c.answered_at.is_not(None),
               visitor.c.recording_url.is_(None), visitor.c.ended_at >= since,
               parent.c.provider_sid.is_not(None), sites_table.c.recording == true())
        .where(~select(jobs_table.c.id).where(jobs_table.c.kind == RECORDING,
                                              jobs_table.c.leg_id == visitor.c.id).exists())
    )
