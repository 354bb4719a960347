"""The engine: the imperative shell around the pure state machine.

For each step it locks the lead, records what the provider reported, asks `machine.decide`, writes the
result (new state, legs about to be dialed, timeline) and commits; only then does it ask the provider to
act and publish the change. Wake-up times live in the database, so a new engine on the same database
resumes every lead where the last one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from . import calling, store
from .broadcast import Broadcast
from .clock import Clock, Timer
from .events import LegEnded, LegEvent, LegRinging, PriceKnown
from .machine import Decision, Policy, Trigger, decide
from .notices import Notices
from .rows import LeadRow, LegRow
from .states import EndReason, LeadStatus, LegRole
from .telephony.base import CallRequest, Provider, ProviderError
from .whisper import whisper_text

log = logging.getLogger("ringback.engine")

DUE_BATCH = 200
# Steps in progress at once (each holds a database connection while it runs; the pool has 30).
CONCURRENCY = 20
LEG_CACHE_SIZE = 100_000
PLACE_CALL_GRACE = 60.0  # seconds after which an unconfirmed dial is looked up and finished
# How long a site's row (name, caller ID, hours, routing) is reused between steps. An owner's change
# reaches an engine in another process within this many seconds; this process is told at once.
SITE_TTL = 5.0


def lead_channel(lead_id: str) -> str:
    return f"lead:{lead_id}"


def site_channel(site_id: int) -> str:
    return f"site:{site_id}"


def public_status(lead: LeadRow | Any, step: int = 0, queue_position: int | None = None) -> dict[str, Any]:
    """What the visitor's widget is told about a lead: no manager names, no numbers."""
    scheduled = lead.scheduled_for if lead.status == LeadStatus.SCHEDULED else None
    message: dict[str, Any] = {
        "id": lead.id,
        "status": lead.status,
        "version": lead.version,
        "attempt": lead.attempt,
        "step": step,
        "scheduled_for": scheduled.isoformat() if scheduled else None,
    }
    if queue_position is not None:
        message["queue_position"] = queue_position
    return message


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
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._timer: Timer | None = None
        self._timer_at: datetime | None = None
        self._recovered_at: datetime | None = None
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._lead_of_leg: dict[str, str] = {}
        self._sites: dict[int, tuple[float, store.SiteRow]] = {}
        self._names: dict[int, str] = {}  # manager names for the timeline, refreshed by every decision
        # Told other engine processes that a lead is due now (set by the runtime when there are several).
        self.announce: Callable[[], None] | None = None
        # Observes how late (simulated seconds) each due wake-up is acted on; the benchmarks set it.
        self.on_wake: Callable[[float], None] | None = None

    # lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.running = True
        self.provider.attach(self.on_provider_event)
        await self.recover_pending_legs(older_than=0)
        self._schedule(0)

    async def stop(self) -> None:
        """Stop claiming work; what is in flight finishes. Nothing is lost: the database holds it."""
        self.pause()
        self.provider.attach(None)
        await self._idle.wait()

    def pause(self) -> None:
        """Claim no more due leads (other engines will), but go on applying what the provider reports."""
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None

    def nudge(self, *, announce: bool = True) -> None:
        """Look for due leads now (a lead was just accepted, or a manager became free); with `announce`,
        the engines of other processes are told too."""
        self._schedule(0)
        if announce and self.announce is not None:
            self.announce()

    @contextmanager
    def _working(self) -> Iterator[None]:
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    # scheduling -------------------------------------------------------------------------------------

    def _schedule(self, delay: float) -> None:
        if not self.running:
            return
        when = self.clock.now() + timedelta(seconds=max(0.0, delay))
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
        try:
            await self.run_due()
            if self.poll_interval is not None and self._recovery_due():
                await self.recover_pending_legs(older_than=PLACE_CALL_GRACE)
        finally:
            await self._schedule_next()

    def _recovery_due(self) -> bool:
        """Look for unconfirmed dials once per poll interval, not on every one of many ticks under load."""
        now = self.clock.now()
        if self._recovered_at is not None and (now - self._recovered_at).total_seconds() < (self.poll_interval or 0):
            return False
        self._recovered_at = now
        return True

    async def _schedule_next(self) -> None:
        async with self.autocommit.connect() as conn:
            wake = await store.next_wake(conn)
        delays = [] if self.poll_interval is None else [self.poll_interval]
        if wake is not None:
            delays.append((wake - self.clock.now()).total_seconds())
        if delays:
            self._schedule(min(delays))

    async def run_due(self) -> int:
        """Advance every lead whose wake-up time has come, several at once; returns how many were looked at."""
        done = 0
        while self.running:
            async with self.autocommit.connect() as conn:
                ids = await store.due_lead_ids(conn, self.clock.now(), DUE_BATCH)
            await self._wake_all(ids)
            done += len(ids)
            if len(ids) < DUE_BATCH:
                break
        return done

    async def _wake_all(self, ids: list[str]) -> None:
        """Step the due leads `ids`, `concurrency` at a time; the calling task is one of the hands."""
        queue = iter(ids)

        async def hand() -> None:
            for lead_id in queue:
                if not self.running:
                    return  # once stopping, what is not started yet stays due for another engine
                try:
                    await self.advance(lead_id, Trigger.WAKE, skip_locked=True)
                except Exception:
                    log.exception("lead %s: wake-up failed", lead_id)

        helpers = [asyncio.create_task(hand()) for _ in range(min(self.concurrency, len(ids)) - 1)]
        try:
            await hand()
        except BaseException:
            for helper in helpers:
                helper.cancel()
            raise
        finally:
            await asyncio.gather(*helpers, return_exceptions=True)

    # events -----------------------------------------------------------------------------------------

    async def on_provider_event(self, event: LegEvent) -> None:
        if isinstance(event, (LegRinging, PriceKnown)):
            await self._note(event)  # reports that change nothing but the leg: no lock on the lead
            return
        lead_id = self._lead_of_leg.get(event.leg_id)
        if lead_id is None:
            async with self._slots, self.autocommit.connect() as conn:
                lead_id = await store.lead_id_for_leg(conn, event.leg_id)
            if lead_id is not None:
                self._remember_leg(event.leg_id, lead_id)
        if lead_id is None:
            log.warning("event for an unknown leg %s ignored", event.leg_id)
            return
        await self.advance(lead_id, Trigger.LEG, event)

    async def _note(self, event: LegRinging | PriceKnown) -> None:
        with self._working():
            async with self._slots:
                if isinstance(event, PriceKnown):
                    async with self.autocommit.connect() as conn:
                        await store.record_price(conn, event)
                    return
                async with self.database.begin() as conn:
                    leg = await store.mark_ringing(conn, event.leg_id, event.sid)
                    if leg is not None:
                        step = store.Step(conn, self.clock.now())
                        party = "visitor" if leg.role == LegRole.VISITOR else await self._manager(conn, leg.manager_id)
                        step.timeline(leg.lead_id, "leg", f"{party}: ringing", leg_id=event.leg_id)
                        await step.flush(None, [])

    def _remember_leg(self, leg_id: str, lead_id: str) -> None:
        # A leg never changes lead, so this cache can only be incomplete, never wrong; it saves a query
        # on every provider report. Bounded by starting afresh.
        if len(self._lead_of_leg) >= LEG_CACHE_SIZE:
            self._lead_of_leg.clear()
        self._lead_of_leg[leg_id] = lead_id

    async def cancel(self, lead_id: str) -> None:
        await self.advance(lead_id, Trigger.CANCEL)

    async def reschedule(self, lead_id: str, when: datetime) -> LeadRow | None:
        """The visitor picked a new time after a missed or unreachable call."""
        lead = await self.advance(lead_id, Trigger.RESCHEDULE, when=when)
        self.nudge()
        return lead

    async def call_back_now(self, lead_id: str, manager_id: int | None) -> LeadRow | None:
        """Ring `manager_id` first, then the visitor, through the usual hunt (a missed lead or a message)."""
        lead = await self.advance(lead_id, Trigger.CALL_BACK, prefer=manager_id)
        self.nudge()
        return lead

    # one step ---------------------------------------------------------------------------------------

    async def advance(
        self,
        lead_id: str,
        trigger: Trigger,
        event: LegEvent | None = None,
        *,
        skip_locked: bool = False,
        prefer: int | None = None,
        when: datetime | None = None,
    ) -> LeadRow | None:
        with self._working():
            plan = None
            async with self._locks[lead_id]:
                for _ in range(5):
                    try:
                        async with self._slots:
                            plan = await self._step(lead_id, trigger, event, skip_locked, prefer, when)
                        break
                    except (store.StaleLead, store.ManagerTaken) as exc:
                        log.debug("retrying step for lead %s: %r", lead_id, exc)
                else:
                    log.error("lead %s: gave up after repeated conflicts", lead_id)
            if not self._locks[lead_id].locked():
                self._locks.pop(lead_id, None)
            if plan is None:
                return None
            await self._perform(plan)
            return plan.lead

    async def _step(
        self,
        lead_id: str,
        trigger: Trigger,
        event: LegEvent | None,
        skip_locked: bool,
        prefer: int | None,
        when: datetime | None,
    ) -> store.Plan | None:
        async with self.database.begin() as conn:
            lead, legs = await store.lock_lead_with_legs(conn, lead_id, skip_locked=skip_locked)
            if lead is None:
                return None
            now = self.clock.now()
            if trigger is Trigger.WAKE:
                if lead.wake_at is None or lead.wake_at > now:
                    return None  # another engine moved it on since we read the due list
                if self.on_wake is not None:
                    self.on_wake((now - lead.wake_at).total_seconds())
            step = store.Step(conn, now)
            if event is not None:
                leg = next((leg for leg in legs if leg.id == event.leg_id), None)
                if leg is None:
                    return None
                party = await self._party(conn, leg)
                if not await store.apply_leg_event(step, lead, leg, event, party):
                    await step.flush(None, legs)  # a report that changes nothing but the leg itself
                    return None
            if trigger is Trigger.CALL_BACK:
                lead.preferred_manager_id = prefer
                lead.handled_at = now
            if trigger is Trigger.RESCHEDULE:
                lead.scheduled_for = when
            managers = await store.managers_of(conn, lead.site_id)
            self._names.update((m.id, m.name) for m in managers)
            site = await self.site(conn, lead.site_id)
            context = await self._context(conn, lead, site, managers, now)
            view = store.lead_view(lead, managers, legs, **context)
            decision = decide(view, trigger, now, self.policy)
            if _no_change(lead, decision):
                await step.flush(lead, legs)
                return store.Plan(lead, site, released_managers=True) if step.released_managers else None
            return await store.write_decision(step, lead, site, legs, managers, decision)

    async def site(self, conn: AsyncConnection, site_id: int) -> store.SiteRow:
        """The site's row, read at most every `SITE_TTL` seconds."""
        cached = self._sites.get(site_id)
        if cached is not None and time.monotonic() - cached[0] < SITE_TTL:
            return cached[1]
        site = await store.get_site(conn, site_id)
        self._sites[site_id] = (time.monotonic(), site)
        return site

    def forget_site(self, site_id: int) -> None:
        """The site was edited in this process: read it afresh at the next step."""
        self._sites.pop(site_id, None)

    async def _party(self, conn: AsyncConnection, leg: LegRow) -> str:
        """Who a leg rings, as the timeline names them."""
        if leg.role == LegRole.VISITOR:
            return "visitor"
        return await self._manager(conn, leg.manager_id)

    async def _manager(self, conn: AsyncConnection, manager_id: int | None) -> str:
        if manager_id is not None and manager_id not in self._names:
            name = await store.manager_name(conn, manager_id)
            if name is not None:
                self._names[manager_id] = name
        name = self._names.get(manager_id or -1)
        return f"manager {name}" if name else "manager"

    async def _context(
        self, conn: AsyncConnection, lead: LeadRow, site: store.SiteRow, managers: list[Any], now: datetime
    ) -> dict[str, Any]:
        """What the state machine needs beyond the lead itself: windows, duty, queue, routing."""
        ring = self.policy.ring_timeout
        context: dict[str, Any] = {
            "allowed_at": calling.allowed_at(now, site, managers, lead.timezone, ring),
            "on_duty": calling.on_duty(now, site, managers, ring),
            "routing": site.routing,
        }
        if lead.status == LeadStatus.QUEUED:
            context["queue_ahead"] = await store.queue_ahead(conn, lead)
        if site.routing == "round_robin" and lead.status in (LeadStatus.QUEUED, LeadStatus.SCHEDULED):
            context["rotation"] = await store.leads_before(conn, lead)
        return context

    async def _perform(self, plan: store.Plan) -> None:
        lead, site = plan.lead, plan.site
        for leg, hangup in plan.hangups:
            try:
                await self.provider.hangup(leg.provider_sid or "", say=hangup.say)
            except ProviderError as exc:
                log.warning("hanging up leg %s failed: %s", leg.id, exc.reason)
        if plan.status_changed or plan.step_changed:
            position = None
            if lead.status == LeadStatus.QUEUED and lead.wake_at is not None and lead.wake_at > self.clock.now():
                async with self.autocommit.connect() as conn:
                    position = await store.queue_ahead(conn, lead) + 1
            message = public_status(lead, plan.step, position)
            await self.broadcast.publish(lead_channel(lead.id), message)
            await self.broadcast.publish(site_channel(lead.site_id), message)
        for leg, _call in plan.calls:
            self._remember_leg(leg.id, lead.id)
            await self._dial(lead, site, leg)
        for text in plan.texts:
            body = self.notices.body(text.kind, site=site.name, lead_id=lead.id, tz=lead.timezone,
                                     when=lead.scheduled_for)
            try:
                await self.provider.send_text(lead.phone, body, sender=site.caller_id)
            except ProviderError as exc:
                log.warning("text message for lead %s not sent: %s", lead.id, exc.reason)
        if plan.released_managers:
            await self._wake_queue(lead.site_id)
        if lead.wake_at is not None:
            self._schedule((lead.wake_at - self.clock.now()).total_seconds())

    async def _dial(
        self, lead: LeadRow, site: store.SiteRow, leg: LegRow, *, since: datetime | None = None
    ) -> None:
        request = await self._request(lead, site, leg)
        failure = None
        async with self.database.begin() as conn:
            # Dial holding the lead's lock, and only a leg with no call yet: an engine in another process
            # recovering this leg meanwhile either waits for us or finds it dialed, never dials it again.
            if not await store.lock_leg_to_dial(conn, lead.id, leg.id):
                return
            try:
                sid = None
                if since is not None:  # this step's fate is unknown: never dial it twice
                    sid = await self.provider.find_call(request, since)
                if sid is None:
                    sid = await self.provider.place_call(request)
            except ProviderError as exc:
                failure = exc
            else:
                if sid is not None:
                    await store.set_sid(conn, leg.id, sid)
        if failure is not None:
            log.info("dialing leg %s failed: %s", leg.id, failure.reason)
            # A refused number is final for that number; a provider that keeps failing ends the lead.
            reason = EndReason.REJECTED if failure.permanent else EndReason.ERROR
            await self.on_provider_event(LegEnded(leg.id, reason=reason, detail=failure.reason))

    async def _request(self, lead: LeadRow, site: store.SiteRow, leg: LegRow) -> CallRequest:
        role = LegRole(leg.role)
        whisper = None
        if role is LegRole.MANAGER:
            source = str((lead.source or {}).get("label") or "direct")
            returning = bool((lead.source or {}).get("returning"))
            whisper = whisper_text(site.name, source, lead.timezone, self.clock.now(), returning=returning)
        bridge = None
        if leg.bridged_to is not None:
            async with self.autocommit.connect() as conn:
                bridge = await store.provider_sid(conn, leg.bridged_to)
        return CallRequest(
            leg_id=leg.id,
            to=leg.to_number,
            role=role,
            timeout=self.policy.ring_timeout,
            caller_id=site.caller_id,
            whisper=whisper,
            bridge_sid=bridge,
            record=site.recording,
        )

    async def _wake_queue(self, site_id: int) -> None:
        async with self.autocommit.connect() as conn:
            woke = await store.wake_oldest_queued(conn, site_id, self.clock.now())
        if woke:
            self.nudge(announce=False)  # this engine takes the queued lead; no need to tell the others

    async def recover_pending_legs(self, older_than: float) -> None:
        """Finish dials that were written but never confirmed (a crash between the write and the dial)."""
        cutoff = self.clock.now() - timedelta(seconds=older_than)
        found = []
        async with self.autocommit.connect() as conn:
            for leg in await store.pending_legs(conn, cutoff):
                lead = await store.get_lead(conn, leg.lead_id)
                if lead is not None:
                    found.append((lead, await self.site(conn, lead.site_id), leg))
        for lead, site, leg in found:
            log.info("leg %s was written but its dial never confirmed: looking it up", leg.id)
            await self._dial(lead, site, leg, since=leg.created_at)


def _no_change(lead: LeadRow, decision: Decision) -> bool:
    return (
        decision.status == lead.status
        and decision.wake_at == lead.wake_at
        and decision.attempt == lead.attempt
        and not decision.actions
        and not decision.notes
    )
