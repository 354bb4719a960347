"""The engine: the imperative shell around the pure state machine.

Work for a lead (it fell due, the provider reported on one of its calls, a manager or the visitor asked
for something) goes into the inbox. A hand takes a batch of leads from it and steps them in one
transaction: it locks the leads (`store`), applies each one's work to its records, asks `machine.decide`
and applies the decision (the rules, all in `dialer/core`), writes the changed records and the timeline
(`store`) and commits; only then does it act: hang up, publish, send texts (`telling`) and dial, each leg
exactly once whatever other engines do (`dialing`). Wake-up times live in the database, so a new engine
on the same database resumes every lead where the last one stopped.

This module holds the `Engine`'s wiring, its start and stop, and the ways work reaches it from outside
(a provider's report, a cancel, a new time, a call back). Its parts have modules of their own: the tick
and waiting while the database is away (`ticking`), the hands that take batches from the inbox and act
after the commit (`hands`), one transaction's lock-decide-write (`stepping`); and around them dialing
and telling after the commit, waking a site's queue (`queue`), reports held for later (`held`),
conflicts tried again (`conflicts`), what the machine needs beyond the records (`context`), and the
backoff and the quiet log (`dialer.retrying`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dialer.broadcast.memory import Broadcast
from dialer.clock import Clock
from dialer.core.events import LegEvent
from dialer.core.machine import IllegalMove, Policy, Trigger
from dialer.core.notices import Notices
from dialer.core.records import LeadRow
from dialer.engine.dialing import Dialer
from dialer.engine.hands import HANDS, Hands
from dialer.engine.held import HeldEvents
from dialer.engine.inbox import Inbox, Work
from dialer.engine.pacing import Pacer
from dialer.engine.parking import Parking
from dialer.engine.queue import QueueWaker
from dialer.engine.reconcile import Reconciler
from dialer.engine.stepping import Stepping
from dialer.engine.telling import Teller
from dialer.engine.ticking import Ticking
from dialer.retrying import Backoff, QuietLog
from dialer.sites.cache import SiteCache
from dialer.telephony.base import Provider

log = logging.getLogger("ringback.engine")

# Database connections the engine uses at once (the pool has 30); SQLite has one writer at a time.
CONCURRENCY = 10


class Engine(Ticking, Hands, Stepping):
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
        self.database = sessions.kw["bind"]
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
        self._tasks = set()
        self._timer = None
        self._timer_at = None
        self._ticking = set()  # ticks under way (a stop waits for them)
        self._recovered_at: datetime | None = None
        self.ticked_at = None  # time.monotonic() of the last tick that went well
        self._last = {}  # when each of the poll's slower chores last ran
        # The database away: the tick tries again after a growing wait (nudges do not hurry it), and the
        # same error is logged once a second at most.
        self._backoff = Backoff(first=1.0, cap=30.0)
        self._not_before = None
        self._quiet = QuietLog(log)
        # Likewise the hands: after a batch failed for want of the database, none starts for a while.
        self._hand_backoff = Backoff(first=1.0, cap=30.0)
        self._hands_resume_at = None
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self.hands = min(HANDS, concurrency)
        # Sites' configs (name, caller ID, hours, routing), shared with the web side of this process: an
        # owner's change reaches an engine in another process within the cache's lifetime, this one at once.
        self.site_cache = sites or SiteCache(clock)
        self._names = {}  # manager names for the timeline, refreshed by every decision
        # Told other engine processes that a lead is due now (set by the runtime when there are several).
        self.announce: Callable[[], None] | None = None
        # Observes how late (simulated seconds) each due wake-up is acted on; the benchmarks set it.
        self.on_wake = None
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
        self.jobs = None

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
