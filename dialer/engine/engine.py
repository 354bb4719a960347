"""The engine: the imperative shell around the pure state machine.

Work for a lead (it fell due, the provider reported on one of its calls, a manager or the visitor asked
for something) goes into the inbox. A hand takes a batch of leads from it and steps them in one
transaction: it locks the leads (`store`), applies each one's work to its records, asks `machine.decide`
and applies the decision (the rules, all in `dialer/core`), writes the changed records and the timeline
(`store`) and commits; only then does it act: hang up, publish, send texts (`telling`) and dial, each leg
exactly once whatever other engines do (`dialing`). Wake-up times live in the database, so a new engine
on the same database resumes every lead where the last one stopped.

Its length (about 600 lines): the batch's lifecycle, scheduling (and waiting while the database is away)
and one transaction's steps read best together; what is around them has modules of its own: dialing and
telling after the commit, waking a site's queue (`queue`), reports held for later (`held`), conflicts
tried again (`conflicts`), what the machine needs beyond the records (`context`), and the backoff and
the quiet log (`dialer.retrying`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from dialer import metrics
from dialer.broadcast.memory import Broadcast
from dialer.clock import Clock, Timer
from dialer.core import apply, views
from dialer.core.events import LegEvent
from dialer.core.legs import LEG_ONLY, recordings_to_find
from dialer.core.machine import IllegalMove, Policy, Trigger, decide
from dialer.core.notices import Notices
from dialer.core.records import LeadRow, LegRow, ManagerRow
from dialer.core.states import CALLING, LeadStatus, LegRole
from dialer.core.step import Step
from dialer.db.models import new_id
from dialer.engine import conflicts, store
from dialer.engine.context import lead_context
from dialer.engine.dialing import CLAIM_GRACE, Dialer
from dialer.engine.held import HeldEvents, reports_by_lead
from dialer.engine.inbox import Inbox, Work
from dialer.engine.jobs import Jobs
from dialer.engine.pacing import Pacer
from dialer.engine.parking import Parking
from dialer.engine.queue import QueueWaker
from dialer.engine.reconcile import Reconciler
from dialer.engine.telling import Teller
from dialer.retrying import Backoff, QuietLog, database_down
from dialer.sites.cache import SiteCache
from dialer.telephony.base import Provider

log = logging.getLogger("ringback.engine")
hunt_log = logging.getLogger("ringback.hunt")
_DIGITS = re.compile(r"\+?\d[\d ()-]{4,}\d")  # anything that could be a phone number, in a provider's words


def log_hunt(step: Step, legs: dict[str, LegRow]) -> None:
    """One log line per step of a hunt, so that it can be followed: the lead, the leg's step, the manager
    rung, what happened. The timeline's own words name people, never numbers; any digits a provider's
    message carries are masked all the same."""
    if not hunt_log.isEnabledFor(logging.INFO):
        return
    for line in step.lines:
        if line.kind not in ("leg", "status"):
            continue
        leg = legs.get(line.leg_id or "")
        where = f" step {leg.step} manager {leg.manager_id or '-'}" if leg is not None else ""
        outcome = line.detail if line.kind == "leg" else f"now {line.status}" + (f": {line.detail}" if line.detail else "")
        hunt_log.info("lead %s%s: %s", line.lead_id, where, _DIGITS.sub(_mask, outcome))


def _mask(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group())
    return "…" + digits[-2:] if len(digits) >= 6 else found.group()

DUE_BATCH = 200
# Leads stepped in one transaction at most (when work piles up; under light load a batch is one lead).
BATCH = 50
# Batches being stepped at once. Few: when work piles up, a few large batches cost far fewer round trips
# than many small ones.
HANDS = 4
# Database connections the engine uses at once (the pool has 30); SQLite has one writer at a time.
CONCURRENCY = 10
RETRY_DELAY = 1.0  # seconds before due leads whose steps all failed are looked at again
# With polling on, at most this often (seconds): held provider reports are tried again, and sites with a
# free manager and a queued lead are looked for (a safety net under the queue's own wake-ups; no writes).
HELD_EVERY = 1.0
QUEUE_SAFETY_EVERY = 10.0


@dataclass(frozen=True)
class Job:
    """A committed step's plan for one lead, with the site it is carried out for."""

    plan: apply.Plan
    site: store.SiteRow

    @property
    def lead(self) -> LeadRow:
        return self.plan.lead


class Engine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        provider: Provider,
        clock: Clock,
        broadcast: Broadcast,
        policy: Policy | None = None,
        *,
        poll_interval: float | None = 1.0,
        notices: Notices | None = None,
        concurrency: int = CONCURRENCY,
        sites: SiteCache | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.sessions = sessions
        self.database: AsyncEngine = sessions.kw["bind"]
        # Reads and single-statement writes need no BEGIN and COMMIT round trips.
        self.autocommit = self.database.execution_options(isolation_level="AUTOCOMMIT")
        self.notices = notices or Notices("http://127.0.0.1:8000", "development")
        self.provider = provider
        self.clock = clock
        self.broadcast = broadcast
        self.policy = policy or Policy()
        self.poll_interval = poll_interval
        self.running = False
        self.inbox = Inbox()
        self._hands = 0  # batches being stepped now
        self.batches = 0  # batches started so far
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: Timer | None = None
        self._timer_at: datetime | None = None
        self._ticking: set[asyncio.Task[Any]] = set()  # ticks under way (a stop waits for them)
        self._recovered_at: datetime | None = None
        self.ticked_at: float | None = None  # time.monotonic() of the last tick that went well
        self._last: dict[str, datetime] = {}  # when each of the poll's slower chores last ran
        # The database away: the tick tries again after a growing wait (nudges do not hurry it), and the
        # same error is logged once a second at most.
        self._backoff = Backoff(first=1.0, cap=30.0)
        self._not_before: datetime | None = None
        self._quiet = QuietLog(log)
        # Likewise the hands: after a batch failed for want of the database, none starts for a while.
        self._hand_backoff = Backoff(first=1.0, cap=30.0)
        self._hands_resume_at: datetime | None = None
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self.hands = min(HANDS, concurrency)
        # Sites' configs (name, caller ID, hours, routing), shared with the web side of this process: an
        # owner's change reaches an engine in another process within the cache's lifetime, this one at once.
        self.site_cache = sites or SiteCache(clock)
        self._names: dict[int, str] = {}  # manager names for the timeline, refreshed by every decision
        # Told other engine processes that a lead is due now (set by the runtime when there are several).
        self.announce: Callable[[], None] | None = None
        # Observes how late (simulated seconds) each due wake-up is acted on; the benchmarks set it.
        self.on_wake: Callable[[float], None] | None = None
        self.teller = Teller(self.database, provider, broadcast, self.notices, clock, self._slots)
        self.dialer = Dialer(self.database, provider, clock, self.policy, self._slots, self.sites,
                             self.on_provider_event, pacer)
        # Calls whose end may never be reported (their process died): asked about (`reconcile`).
        self.reconciler = Reconciler(self.database, provider, clock, self.on_provider_event, self._slots)
        # Leads whose step keeps failing (not for want of the database) are parked (`parking`).
        self.parking = Parking(self.database, provider, clock, self.site_cache, self._freed_by_parking)
        self.queue = QueueWaker(self.database, self._slots, clock, self.policy.ring_timeout, self.sites,
                                self.enqueue)
        self.held = HeldEvents(self.database, self._slots, clock, self.submit, self.dialer.lead_of)
        # Provider work kept for later (`jobs`; set by the runtime): a step that ends a recorded visitor
        # leg writes the job that looks its recording up, should the recording's report be lost.
        self.jobs: Jobs | None = None

    def _freed_by_parking(self, site_id: int) -> None:
        self.queue.wake([site_id])
        self.nudge(announce=True)

    async def recover_pending_legs(self, older_than: float) -> None:
        """Finish dials that were interrupted (`dialing.Dialer.recover`)."""
        await self.dialer.recover(older_than)

    # lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.running = self.held.running = True
        self.provider.attach(self.on_provider_event)
        try:
            await self.recover_pending_legs(older_than=0)
            await self.held.apply_due()
        except Exception as exc:  # the database away at start-up: the poll finds them later
            self._quiet.error("recovering unconfirmed dials and held reports at start-up", exc, now=time.monotonic())
        self.reconciler.start(repeat=self.poll_interval is not None)
        self._schedule(0)

    async def stop(self) -> None:
        """Stop claiming work; what is in flight finishes. Nothing is lost: the database holds it."""
        self.pause()
        self.provider.attach(None)
        await self.queue.wait()
        await self.held.stop()
        # A tick under way (its chores, its due leads) finishes before the database is let go.
        await asyncio.gather(*self._ticking, self.reconciler.wait(), return_exceptions=True)
        await self._idle.wait()
        await self.dialer.stop_waiting()  # paced calls not yet placed stay claimed for recovery

    def pause(self) -> None:
        """Claim no more due leads (other engines will), but go on applying what the provider reports."""
        self.running = False
        self.reconciler.stop()
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None

    def nudge(self, *, announce: bool = True) -> None:
        """Look for due leads now (a lead was just accepted, or a manager became free); with `announce`,
        the engines of other processes are told too."""
        self._schedule(0)
        if announce and self.announce is not None:
            self.announce()

    @property
    def at_rest(self) -> bool:
        """Nothing in hand: no batch being stepped, no work waiting for a hand, no queue round under way."""
        return self._busy == 0 and not len(self.inbox) and self.queue.at_rest

    # scheduling -------------------------------------------------------------------------------------

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

    # the inbox --------------------------------------------------------------------------------------

    def submit(self, lead_id: str, work: Work) -> asyncio.Future[LeadRow | None]:
        """Queue `work` for the lead; the future resolves once it is committed and acted on."""
        done = self.inbox.put(lead_id, work).done
        self._pump()
        return done

    def enqueue(self, items: list[tuple[str, Work]]) -> list[Work]:
        """Queue work for several leads at once, in this order (one batch steps them in it); returns the
        work whose futures tell when each is done."""
        works = [self.inbox.put(lead_id, work) for lead_id, work in items]
        self._pump()
        return works

    def _pump(self) -> None:
        if self._hands_resume_at is not None and self.clock.now() < self._hands_resume_at:
            return  # the database was away: the hands wait (`_after_batch`)
        while self._hands < self.hands and len(self.inbox):
            batch = self.inbox.take(BATCH)
            self.batches += 1
            self._hands += 1
            self._busy += 1  # counted from now, so that `stop` waits for it even before it starts
            self._idle.clear()
            task = asyncio.ensure_future(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, Work]]) -> None:
        plans: dict[str, Any] = {}
        try:
            try:
                plans = await self._step_batch(batch)
                # A manager became free: the longest-waiting leads of that site that can take one are
                # stepped now (`queue.py`).
                self.queue.wake({job.lead.site_id for job in plans.values()
                                 if isinstance(job, Job) and job.plan.released_managers})
            finally:
                self.inbox.release([lead_id for lead_id, _ in batch])
                self._hands -= 1
                self._after_batch(plans)
                self.parking.observe(plans)
                self._pump()
                for lead_id, work in batch:
                    if not work.committed.done():
                        outcome = plans.get(lead_id)
                        failed = isinstance(outcome, BaseException)
                        work.committed.set_result(None if failed else isinstance(outcome, Job))
            await self._perform([job for job in plans.values() if isinstance(job, Job)])
        except Exception as exc:
            # Committed, but acting on it failed: what was not dialed is found again (recover_pending_legs).
            self._quiet.error("acting on a step", exc, now=time.monotonic())
        finally:
            for lead_id, work in batch:
                outcome = plans.get(lead_id)
                if work.done.done():
                    continue
                if isinstance(outcome, BaseException):
                    work.done.set_exception(outcome)
                else:
                    work.done.set_result(outcome.lead if outcome is not None else None)
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    def _after_batch(self, outcomes: dict[str, Any]) -> None:
        """A batch whose every lead failed for want of the database: the hands wait a growing while
        before the next (what is in the inbox stays there); the first batch that goes well ends it."""
        failures = [o for o in outcomes.values() if isinstance(o, BaseException)]
        if failures and len(failures) == len(outcomes) and all(database_down(e) for e in failures):
            delay = self._hand_backoff.failed()
            resume = self.clock.now() + timedelta(seconds=delay)
            if self._hands_resume_at is None or resume > self._hands_resume_at:
                self._hands_resume_at = resume
                self.clock.call_later(delay, self._resume_hands)
        elif len(failures) < len(outcomes):
            if self._hand_backoff.failures:
                self._quiet.recovered("stepping a lead", self._hand_backoff.succeeded())
            self._hands_resume_at = None

    async def _resume_hands(self) -> None:
        if self._hands_resume_at is not None and self.clock.now() >= self._hands_resume_at:
            self._hands_resume_at = None
            self._pump()

    async def _step_batch(self, batch: list[tuple[str, Work]]) -> dict[str, Any]:
        """Step the batch in one transaction; when that fails, each lead alone, so one lead's trouble
        stays its own. Returns each lead's plan, None (nothing to do) or the exception it met."""
        try:
            return await self._step_alone(batch)
        except Exception as exc:
            if len(batch) == 1:
                self._quiet.error("stepping a lead", exc, now=time.monotonic(), detail=batch[0][0],
                                  trace=_traced(exc))
                return {batch[0][0]: exc}
        outcomes: dict[str, Any] = {}
        for item in batch:
            try:
                outcomes.update(await self._step_alone([item]))
            except Exception as exc:
                self._quiet.error("stepping a lead", exc, now=time.monotonic(), detail=item[0], trace=_traced(exc))
                outcomes[item[0]] = exc
        return outcomes

    async def _step_alone(self, batch: list[tuple[str, Work]]) -> dict[str, Any]:
        """One transaction, tried again after a deadlock or a serialization failure (the work is kept)."""

        async def attempt() -> dict[str, Any]:
            # Reports about these leads kept in memory are written first: the step applies them, in order.
            await self.held.write_kept({lead_id for lead_id, _ in batch})
            async with self._slots:
                with metrics.STEP_SECONDS.time():
                    return await self._step(batch)

        return await conflicts.retried("a step", attempt)

    # events -----------------------------------------------------------------------------------------

    async def on_provider_event(self, event: LegEvent) -> None:
        """Apply a provider's report; one that cannot be applied now is held and applied later (`held.py`),
        never dropped."""
        await self.report(event)

    async def report(self, event: LegEvent) -> bool:
        """`on_provider_event`, telling whether the report was held, to be applied later (True), rather
        than applied now or ignored (its leg unknown)."""
        try:
            lead_id = await self.dialer.lead_of(event.leg_id)
        except Exception as exc:
            await self.held.keep(None, event, exc)
            return True
        if lead_id is None:
            log.warning("event for an unknown leg %s ignored", event.leg_id)
            return False
        try:
            await self.submit(lead_id, Work(Trigger.LEG, event))
        except Exception as exc:
            await self.held.keep(lead_id, event, exc)
            return True
        return False

    async def cancel(self, lead_id: str) -> LeadRow | None:
        """The visitor or a manager withdrew the request: calls under way are hung up. Returns the lead
        once cancelled, or None when there was nothing to cancel (it was over already)."""
        return await self.submit(lead_id, Work(Trigger.CANCEL))

    async def reschedule(self, lead_id: str, when: datetime) -> LeadRow | None:
        """The visitor picked a new time after a missed or unreachable call."""
        lead = await self._reopen(lead_id, Work(Trigger.RESCHEDULE, when=when))
        self.nudge()
        return lead

    async def call_back_now(self, lead_id: str, manager_id: int | None) -> LeadRow | None:
        """Ring `manager_id` first, then the visitor, through the usual hunt (a missed lead or a message)."""
        lead = await self._reopen(lead_id, Work(Trigger.CALL_BACK, prefer=manager_id))
        self.nudge()
        return lead

    async def _reopen(self, lead_id: str, work: Work) -> LeadRow | None:
        """Make an ended lead active again, unless the database's "one active request per number" index
        refuses it (the visitor has sent a new request since, still in hand): then IllegalMove."""
        try:
            return await self.submit(lead_id, work)
        except IntegrityError:
            raise IllegalMove(
                "A newer request for this number is being handled: this one can be reopened once it is over."
            ) from None

    # one transaction --------------------------------------------------------------------------------

    async def _step(self, batch: list[tuple[str, Work]]) -> dict[str, Any]:
        """Lock the batch's leads, apply each one's work, decide, write it all, commit.

        The lock order (every transaction that locks more than one row keeps it; `store.py`): leads, those
        waited for first, then those skipped when taken; then the sites' managers; then legs, each in id
        order. Nothing is locked after the managers but legs."""
        async with self.database.begin() as conn:
            now = self.clock.now()
            step = Step(now)
            found = await store.lock_leads(conn, [i for i, w in batch if not w.skip_locked])
            found.update(await store.lock_leads(conn, [i for i, w in batch if w.skip_locked], skip_locked=True))
            # Every report held for these leads is applied now, first, oldest first, and deleted in this
            # transaction (`held.py`): nothing newer is decided on a lead before what it was told earlier.
            taken = await store.take_held_of(conn, [w.held_id for _, w in batch if w.held_id is not None],
                                             {lead_id: [leg.id for leg in legs] for lead_id, (_, legs) in found.items()})
            held = {row[0] for row in taken}
            earlier = reports_by_lead(taken)
            live: list[tuple[LeadRow, list[LegRow], Work]] = []
            reports: dict[str, tuple[Trigger, list[LegEvent]]] = {}
            for lead_id, work in batch:
                if lead_id not in found or (work.held_id is not None and work.held_id not in held):
                    continue  # gone; another engine is stepping it (a wake-up); the held report is applied
                lead, legs = found[lead_id]
                told = earlier.pop(lead_id, [])
                trigger = work.trigger
                if work.trigger in (Trigger.WAKE, Trigger.QUEUE) and not self.running:
                    trigger = Trigger.LEG  # stopping: what is not started yet stays due for another engine
                elif work.trigger is Trigger.WAKE:
                    if lead.wake_at is None or lead.wake_at > now:
                        trigger = Trigger.LEG  # another engine moved it on since we read the due list
                    else:
                        metrics.WAKE_LATENESS.observe((now - lead.wake_at).total_seconds())
                        if self.on_wake is not None:
                            self.on_wake((now - lead.wake_at).total_seconds())
                        if told and LeadStatus(lead.status) in CALLING:
                            trigger = Trigger.LEG  # decided on what it was told; a deadline still due next tick
                if trigger is Trigger.LEG and work.trigger is not Trigger.LEG and not told:
                    continue
                if work.event is not None and work.held_id is None:
                    told.append(work.event)
                live.append((lead, legs, work))
                reports[lead_id] = (trigger, told)
            # Reports that decide nothing (ringing, a price) need neither the managers nor the site.
            deciding = [lead for lead, _, _ in live
                        if reports[lead.id][0] is not Trigger.LEG
                        or not all(isinstance(e, LEG_ONLY) for e in reports[lead.id][1])]
            site_ids = {lead.site_id for lead in deciding}
            managers = await store.lock_managers(conn, site_ids)
            sites = await self.sites(conn, site_ids)
            told_legs = {e.leg_id for _, told in reports.values() for e in told}
            await self._learn_names(conn, [leg for _, legs, _ in live for leg in legs if leg.id in told_legs])
            plans: dict[str, Any] = {}
            for lead, legs, work in live:
                site = sites.get(lead.site_id)
                plans[lead.id] = await self._decide(conn, step, lead, legs, work, *reports[lead.id], site,
                                                    managers.get(lead.site_id, []))
            log_hunt(step, {leg.id: leg for _, legs, _ in live for leg in legs})
            recorded = [(leg.id, parent) for lead, legs, _ in live
                        if lead.site_id in sites and sites[lead.site_id].recording
                        for leg, parent in recordings_to_find(legs)]
            await store.flush(conn, step, [lead for lead, _, _ in live], [leg for _, legs, _ in live for leg in legs],
                              [m for ms in managers.values() for m in ms])
            due = await self.jobs.keep_recordings(conn, recorded) if self.jobs is not None and recorded else None
        if self.jobs is not None:
            self.jobs.wake(due)  # committed: the job can be seen
        return plans

    async def _decide(
        self,
        conn: AsyncConnection,
        step: Step,
        lead: LeadRow,
        legs: list[LegRow],
        work: Work,
        trigger: Trigger,
        told: list[LegEvent],
        site: store.SiteRow | None,
        managers: list[ManagerRow],
    ) -> Job | None:
        """Apply the work and the reports the lead was told (held ones first) to its records, decide on
        `trigger`, apply the decision (the rules are in core)."""
        now = step.now
        self._names.update((m.id, m.name) for m in managers)
        if not apply.before_deciding(step, lead, legs, managers, self._names, trigger, reports=told,
                                     prefer=work.prefer, when=work.when):
            return None
        assert site is not None  # every lead that gets this far had its site read
        context = await lead_context(conn, self.policy, lead, site, managers, now)
        view = views.lead_view(lead, managers, legs, **context)
        decision = decide(view, trigger, now, self.policy)
        plan = apply.apply_decision(step, lead, legs, managers, decision, new_id)
        return Job(plan, site) if plan is not None else None

    async def sites(self, conn: AsyncConnection, site_ids: set[int]) -> dict[int, store.SiteRow]:
        """The sites' configs, each read at most every `site_cache.ttl` seconds."""
        return await self.site_cache.configs(conn, site_ids)

    async def _learn_names(self, conn: AsyncConnection, legs: list[LegRow]) -> None:
        """Know the names of the managers these legs ring (the timeline names them)."""
        missing = {leg.manager_id for leg in legs if leg.manager_id is not None} - self._names.keys()
        if missing:
            self._names.update(await store.manager_names(conn, missing))

    # after the commit -------------------------------------------------------------------------------

    async def _perform(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        # A visitor is connected first: that <Dial> is the reply a manager's key press is waiting for
        # (`telephony/twilio.py`), and nothing else the step does may stand before it. The rest (hang-ups
        # of the other managers, news, texts, new rings, questions to the provider) then runs at once.
        calls = [(job.lead, job.site, leg) for job in jobs for leg, _ in job.plan.calls]
        bridges = [item for item in calls if item[2].role == LegRole.VISITOR]
        await self.dialer.dial(bridges)
        checks = [(job.lead, job.site, leg) for job in jobs for leg in job.plan.checks]
        told, *_ = await asyncio.gather(
            asyncio.gather(*(self.teller.tell(job.plan, job.site) for job in jobs), return_exceptions=True),
            self.dialer.dial([item for item in calls if item[2].role != LegRole.VISITOR]),
            self.dialer.check(checks),
        )
        # What a step tells the world never stands between it and its dial: a failure there is logged.
        for job, outcome in zip(jobs, told, strict=True):
            if isinstance(outcome, Exception):
                log.warning("telling lead %s's step failed: %r", job.lead.id, outcome)
        for job in jobs:
            if job.lead.wake_at is not None:
                self._schedule((job.lead.wake_at - self.clock.now()).total_seconds())


def _traced(exc: BaseException) -> bool:
    """Whether an error is logged with its text: not a constraint's refusal, whose text holds the row's
    values (a visitor's number, for the one-active-request-per-number index)."""
    return not isinstance(exc, IntegrityError)
