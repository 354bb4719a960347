"""Dialing the legs a committed step wrote, each exactly once, however many engines are running.

A leg is dialed only by the engine that claimed it: a conditional update of the leg's own row
(`store_claims.claim_legs`), committed before the provider is asked, so two engines, or an engine's recovery and
its normal path, never both dial one step. No database lock is held while the provider is asked. Once the
provider answers, its call id is written; if somebody else's call id came first, or the leg ended before
we knew our call's id (a cancel, a ring timeout), ours is hung up.

Calls created through the provider's REST API (managers' legs) are paced (`dialer/engine/pacing.py`):
each waits for its slot, its claim and `starts_at` dated at that slot, and is dialed only if still ours
then (a cancel may have ended it meanwhile). A create the provider refused for its rate limit is put back:
the claim is released, to be dialed by any engine's recovery after a jittered backoff; the lead never
fails for it.

Recovery finishes what was interrupted. A leg written but never claimed (the step committed, its dial
never started) is claimed and dialed like any other. A leg claimed but never confirmed (its claimer died
between the claim and the call id) is taken over with a conditional update on the old claim, so of two
recoverers one acts; it asks the provider for the call first and dials only when there is none.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer.clock import Clock
from dialer.core.call_status import missing_reports
from dialer.core.events import LegEnded, LegEvent
from dialer.core.machine import Policy
from dialer.core.records import LeadRow, LegRow
from dialer.core.states import EndReason, LegRole, LegStatus
from dialer.core.whisper import said_source, whisper_text
from dialer.db.models import new_id
from dialer.engine import store, store_claims
from dialer.engine.pacing import Pacer
from dialer.retrying import Backoff
from dialer.telephony.base import CallRequest, Provider, ProviderError

log = logging.getLogger("ringback.engine")

# Seconds after which a claim never confirmed is taken to be its claimer's death: longer than any
# provider request takes, so a claimer still waiting on the provider is never overtaken.
CLAIM_GRACE = 60.0
LEG_CACHE_SIZE = 100_000

Item = tuple[LeadRow, store.SiteRow, LegRow]
Placed = tuple[str, str | ProviderError | BaseException | None]


def engine_name() -> str:
    """Names this engine in the claims it makes (host, process, and what tells apart two in one process)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{new_id()[:8]}"


class Dialer:
    def __init__(
        self,
        database: AsyncEngine,
        provider: Provider,
        clock: Clock,
        policy: Policy,
        slots: asyncio.Semaphore,
        sites: Callable[[AsyncConnection, set[int]], Awaitable[dict[int, store.SiteRow]]],
        report: Callable[[LegEvent], Awaitable[None]],
        pacer: Pacer | None = None,
    ) -> None:
        self.name = engine_name()
        self.pacer = pacer
        self._waiting: set[asyncio.Task[None]] = set()  # paced creates waiting for their slot
        self._rate_backoff = Backoff(first=2.0, cap=60.0, jitter=0.5)
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self.provider = provider
        self.clock = clock
        self.policy = policy
        self._slots = slots
        self._sites = sites
        self._report = report  # a provider report of our own making (a dial refused) goes in as any other
        self._lead_of_leg: dict[str, str] = {}

    async def lead_of(self, leg_id: str) -> str | None:
        """The lead a leg (a provider report names it) belongs to."""
        lead_id = self._lead_of_leg.get(leg_id)
        if lead_id is None:
            async with self._slots, self.autocommit.connect() as conn:
                lead_id = await store.lead_id_for_leg(conn, leg_id)
            if lead_id is not None:
                self._remember(leg_id, lead_id)
        return lead_id

    def _remember(self, leg_id: str, lead_id: str) -> None:
        # A leg never changes lead, so this cache can only be incomplete, never wrong; it saves a query
        # on every provider report. Bounded by starting afresh.
        if len(self._lead_of_leg) >= LEG_CACHE_SIZE:
            self._lead_of_leg.clear()
        self._lead_of_leg[leg_id] = lead_id

    async def dial(self, items: list[Item]) -> None:
        """Claim these legs and dial those claimed (the others someone else is dialing, or has)."""
        if not items:
            return
        for lead, _, leg in items:
            self._remember(leg.id, lead.id)
        async with self._slots, self.autocommit.connect() as conn:
            claimed = await store_claims.claim_legs(conn, [leg.id for _, _, leg in items], self.name, self.clock.now())
        requests = [await self._request(lead, site, leg) for lead, site, leg in items if leg.id in claimed]
        paced = [r for r in requests if self._pace_key(r) is not None]
        await self._start_paced(paced)
        free = [r for r in requests if self._pace_key(r) is None]
        await self._record(list(await asyncio.gather(*(self._place(r) for r in free))))

    # pacing -----------------------------------------------------------------------------------------

    def _pace_key(self, request: CallRequest) -> str | None:
        """The account whose calls-per-second pace this request's create waits for; None: not paced (no
        pacer, a provider without a pace, or a leg dialed from inside another call)."""
        key = getattr(self.provider, "pace_key", None)
        if self.pacer is None or request.role is not LegRole.MANAGER or not isinstance(key, str):
            return None
        return key

    async def _start_paced(self, requests: list[CallRequest]) -> None:
        """Reserve the creates' slots, date their claims at them, and leave each waiting for its turn."""
        if not requests:
            return
        assert self.pacer is not None
        key = self._pace_key(requests[0])
        assert key is not None
        slots = await self.pacer.reserve(key, len(requests))
        async with self._slots, self.autocommit.connect() as conn:
            await store_claims.pace_legs(conn, {r.leg_id: at for r, at in zip(requests, slots, strict=True)}, self.name)
        for request, at in zip(requests, slots, strict=True):
            task = asyncio.ensure_future(self._when_due(request, at))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)

    async def _when_due(self, request: CallRequest, at: datetime) -> None:
        assert self.pacer is not None
        try:
            await self.pacer.wait_until(at)
            async with self._slots, self.autocommit.connect() as conn:
                ours = await store_claims.still_ours(conn, [request.leg_id], self.name)
            if not ours:
                log.info("leg %s ended while its call waited for its turn: not dialed", request.leg_id)
                return
            await self._record([await self._place(request)])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the claim stays: recovery looks it up after the grace
            log.warning("placing the paced call for leg %s failed: %r", request.leg_id, exc)

    async def stop_waiting(self) -> None:
        """Stop: paced creates not sent yet stay claimed (dated at their slot) for any engine's recovery."""
        for task in list(self._waiting):
            task.cancel()
        await asyncio.gather(*self._waiting, return_exceptions=True)

    async def _put_back(self, leg_id: str, error: ProviderError) -> None:
        delay = self._rate_backoff.failed()
        at = self.clock.now() + timedelta(seconds=delay)
        async with self._slots, self.autocommit.connect() as conn:
            if await store_claims.put_back(conn, leg_id, self.name, at):
                log.warning("leg %s: %s; put back, dialed again in %.0f s", leg_id, error.reason, delay)

    async def recover(self, older_than: float) -> None:
        """Finish dials that were interrupted: written but never claimed `older_than` seconds after, or
        claimed but never confirmed `CLAIM_GRACE` seconds after."""
        now = self.clock.now()
        written, claimed = now - timedelta(seconds=older_than), now - timedelta(seconds=CLAIM_GRACE)
        found = []
        async with self._slots, self.autocommit.connect() as conn:
            for leg in await store_claims.pending_legs(conn, written, claimed, now):
                lead = await store.get_lead(conn, leg.lead_id)
                if lead is not None:
                    found.append((lead, leg))
            sites = await self._sites(conn, {lead.site_id for lead, _ in found})
        for lead, leg in found:
            if leg.dial_claimed_at is None:
                log.info("leg %s was written but never dialed (or was put back): dialing it", leg.id)
                await self.dial([(lead, sites[lead.site_id], leg)])
            else:
                await self._take_over(lead, sites[lead.site_id], leg)

    async def _take_over(self, lead: LeadRow, site: store.SiteRow, leg: LegRow) -> None:
        async with self._slots, self.autocommit.connect() as conn:
            won = await store_claims.reclaim_leg(conn, leg, self.name, self.clock.now())
        if not won:
            return  # another engine took it over, or the call was confirmed meanwhile
        log.info("leg %s was claimed by %s but never confirmed: looking it up", leg.id, leg.dial_claimed_by)
        request = await self._request(lead, site, leg)
        try:
            sid = await self.provider.find_call(request, leg.created_at)
        except ProviderError as exc:
            # Not knowing whether the call exists, never dial: the claim is looked at again after the grace.
            log.warning("looking up leg %s failed: %s", leg.id, exc.reason)
            return
        if sid is not None:
            async with self._slots, self.autocommit.connect() as conn:
                owner = await store_claims.leg_of_sid(conn, sid)
            if owner not in (None, leg.id):
                # Another lead's (or leg's) call that happens to match: never adopted. Ours is not found,
                # so it was never placed: dial.
                log.warning("leg %s: the call found (%s) is leg %s's; dialing anew", leg.id, sid, owner)
                sid = None
        if sid is not None:
            await self._record([(leg.id, sid)])
        elif self._pace_key(request) is not None:
            await self._start_paced([request])
        else:
            await self._record([await self._place(request)])

    async def check(self, items: list[Item]) -> None:
        """Ask the provider how these calls stand (their callbacks did not come before a deadline) and
        report what it says as the missing callbacks would have (`core.call_status.missing_reports`). A
        call whose id we never learned (a visitor dialed from the manager's call) is looked up first. A
        provider that cannot tell now, or has no such call, reports nothing: the lead's next deadline
        decides."""
        answers = await asyncio.gather(*(self._check(lead, site, leg) for lead, site, leg in items))
        # The visitor's first: how long a conversation lasted is the visitor's call's to say.
        for _, events in sorted(zip(items, answers, strict=True), key=lambda x: x[0][2].role != LegRole.VISITOR):
            for event in events:
                log.info("leg %s: the provider says %s", event.leg_id, type(event).__name__)
                await self._report(event)

    async def _check(self, lead: LeadRow, site: store.SiteRow, leg: LegRow) -> tuple[LegEvent, ...]:
        try:
            sid = leg.provider_sid
            if not sid:
                sid = await self.provider.find_call(await self._request(lead, site, leg), leg.created_at)
            status = await self.provider.call_status(sid) if sid else None
        except ProviderError as exc:
            log.warning("asking about leg %s failed: %s", leg.id, exc.reason)
            return ()
        if sid is None or status is None:
            return ()
        return missing_reports(leg.id, sid, LegRole(leg.role), LegStatus(leg.status), status)

    async def _place(self, request: CallRequest) -> Placed:
        try:
            return request.leg_id, await self.provider.place_call(request)
        except ProviderError as exc:
            return request.leg_id, exc
        except Exception as exc:  # noqa: BLE001 - the other calls' ids are recorded before it is raised
            return request.leg_id, exc

    async def _record(self, placed: list[Placed]) -> None:
        """Write the calls' ids; report the refusals; hang up a call that is not the leg's."""
        sids = {leg_id: result for leg_id, result in placed if isinstance(result, str)}
        now = self.clock.now()
        # The provider's own queue (Twilio's `queue_time`): the ring deadline counts from the estimate.
        queued = {leg_id: now + timedelta(seconds=float(getattr(sid, "queue_seconds", 0.0))) for leg_id, sid in sids.items()}
        if sids and self._rate_backoff.failures:
            self._rate_backoff.succeeded()
        async with self._slots, self.autocommit.connect() as conn:
            for leg_id in await store_claims.sids_elsewhere(conn, sids):
                # A lost create's look-up found a call another leg already has: never adopted (the leg
                # stays unconfirmed; its own callbacks, or recovery after the grace, settle it).
                log.warning("leg %s: call %s belongs to another leg; not adopted", leg_id, sids.pop(leg_id))
                queued.pop(leg_id, None)
            await store_claims.expect_start(conn, queued)
            written = await store_claims.set_sids(conn, sids)
        for leg_id, (stored, status) in written.items():
            if stored != sids[leg_id]:
                log.warning("leg %s already has call %s: hanging up %s", leg_id, stored, sids[leg_id])
            elif status == LegStatus.ENDED:
                log.info("leg %s ended before its call id was known: hanging up", leg_id)
            else:
                continue
            try:
                await self.provider.hangup(sids[leg_id])
            except ProviderError as exc:
                log.warning("hanging up leg %s failed: %s", leg_id, exc.reason)
        for leg_id, result in placed:
            if isinstance(result, ProviderError) and result.rate_limited:
                await self._put_back(leg_id, result)  # never the lead's failure: dialed again later
            elif isinstance(result, ProviderError):
                log.info("dialing leg %s failed: %s", leg_id, result.reason)
                # A refused number is final for that number; a provider that keeps failing ends the lead;
                # the manager's call over before the visitor could join it is a manager who left.
                reason = (EndReason.CANCELED if result.call_over
                          else EndReason.REJECTED if result.permanent else EndReason.ERROR)
                await self._report(LegEnded(leg_id, reason=reason, detail=result.reason))
        for _, result in placed:
            if isinstance(result, BaseException) and not isinstance(result, ProviderError):
                raise result  # not the provider's answer: the claim stays, recovery looks it up after the grace

    async def _request(self, lead: LeadRow, site: store.SiteRow, leg: LegRow) -> CallRequest:
        role = LegRole(leg.role)
        whisper = None
        if role is LegRole.MANAGER:
            source = said_source(lead.source)  # derived values only, never the visitor's free text
            returning = bool((lead.source or {}).get("returning"))
            whisper = whisper_text(site.name, source, lead.timezone, self.clock.now(), returning=returning)
        bridge = None
        if leg.bridged_to is not None:
            async with self._slots, self.autocommit.connect() as conn:
                bridge = await store_claims.provider_sid(conn, leg.bridged_to)
        return CallRequest(
            leg_id=leg.id,
            to=leg.to_number,
            role=role,
            timeout=self.policy.ring_timeout,
            caller_id=site.caller_id,
            whisper=whisper,
            bridge_sid=bridge,
            bridge_leg_id=leg.bridged_to,
            record=site.recording,
            time_limit=self.policy.max_call_seconds,
        )

