"""One transaction of the engine: lock a batch's leads, take the reports held for them, apply each one's
work to its records, decide (the rules are in `dialer/core`), write it all and commit (`Stepping._step`
says the lock order).

A part of `Engine` (`engine.py` wires it); the attributes it reads are declared below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer import metrics
from dialer.clock import Clock
from dialer.core import apply, views
from dialer.core.events import LegEvent
from dialer.core.legs import LEG_ONLY, recordings_to_find
from dialer.core.machine import Policy, Trigger, decide
from dialer.core.records import LeadRow, LegRow, ManagerRow
from dialer.core.states import CALLING, LeadStatus
from dialer.core.step import Step
from dialer.db.models import new_id
from dialer.engine import store, store_held
from dialer.engine.context import lead_context
from dialer.engine.held import reports_by_lead
from dialer.engine.hunt_log import log_hunt
from dialer.engine.inbox import Work
from dialer.engine.jobs import Jobs
from dialer.sites.cache import SiteCache


@dataclass(frozen=True)
class Job:
    """A committed step's plan for one lead, with the site it is carried out for."""

    plan: apply.Plan
    site: store.SiteRow

    @property
    def lead(self) -> LeadRow:
        return self.plan.lead


class Stepping:
    database: AsyncEngine
    clock: Clock
    policy: Policy
    running: bool
    site_cache: SiteCache
    jobs: Jobs | None
    on_wake: Callable[[float], None] | None
    _names: dict[int, str]

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
            taken = await store_held.take_held_of(conn, [w.held_id for _, w in batch if w.held_id is not None],
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
