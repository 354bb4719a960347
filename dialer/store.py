"""Every database operation the engine needs. The engine asks; it never writes SQL itself.

Repositories flush, the engine commits: one unit of work per engine step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from .events import KeyPressed, LegAnswered, LegEnded, LegEvent, LegRinging, PriceKnown, RecordingReady
from .machine import Decision, Hangup, LeadView, LegView, ManagerView, PlaceCall, SendText
from .models import CallLeg, Lead, LeadEvent, Manager, Site, new_id
from .states import TERMINAL, EndReason, LeadStatus, LegRole, LegStatus


class StaleLead(Exception):
    """Someone else moved the lead on between our read and our write; the step is tried again."""


class ManagerTaken(Exception):
    """The manager we meant to ring was claimed for another lead a moment ago."""


@dataclass
class Plan:
    """What to ask of the provider once the step is committed."""

    lead: Lead
    site: Site
    calls: list[tuple[CallLeg, PlaceCall]] = field(default_factory=list)
    hangups: list[tuple[CallLeg, Hangup]] = field(default_factory=list)
    texts: list[SendText] = field(default_factory=list)
    status_changed: bool = False
    step_changed: bool = False
    released_managers: bool = False
    step: int = 0


async def lock_lead(session: AsyncSession, lead_id: str, *, skip_locked: bool = False) -> Lead | None:
    query = select(Lead).where(Lead.id == lead_id).with_for_update(skip_locked=skip_locked)
    return (await session.execute(query)).scalar_one_or_none()


async def get_site(session: AsyncSession, site_id: int) -> Site:
    return (await session.execute(select(Site).where(Site.id == site_id))).scalar_one()


async def lead_id_for_leg(session: AsyncSession, leg_id: str) -> str | None:
    query = select(CallLeg.lead_id).where(CallLeg.id == leg_id)
    return (await session.execute(query)).scalar_one_or_none()


async def due_lead_ids(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Leads whose wake-up time has come, leaving out those another engine is stepping right now."""
    query = (
        select(Lead.id)
        .where(Lead.wake_at.is_not(None), Lead.wake_at <= now)
        .order_by(Lead.wake_at, Lead.created_at, Lead.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())


async def next_wake(session: AsyncSession) -> datetime | None:
    return (await session.execute(select(func.min(Lead.wake_at)))).scalar_one_or_none()


async def legs_of(session: AsyncSession, lead_id: str) -> list[CallLeg]:
    query = select(CallLeg).where(CallLeg.lead_id == lead_id).order_by(CallLeg.created_at, CallLeg.step)
    return list((await session.execute(query)).scalars())


async def active_managers(session: AsyncSession, site_id: int) -> list[Manager]:
    query = (
        select(Manager)
        .where(Manager.site_id == site_id, Manager.active.is_(True))
        .order_by(Manager.position, Manager.id)
    )
    return list((await session.execute(query)).scalars())


def _attempt_of(step: str) -> int:
    return int(step.split(":", 1)[0][1:])


def leg_view(leg: CallLeg) -> LegView:
    return LegView(
        id=leg.id,
        attempt=_attempt_of(leg.step),
        role=LegRole(leg.role),
        status=LegStatus(leg.status),
        manager_id=leg.manager_id,
        accepted=leg.accepted,
        end_reason=EndReason(leg.end_reason) if leg.end_reason else None,
        detail=leg.end_detail,
    )


def lead_view(lead: Lead, managers: list[Manager], legs: list[CallLeg], **context: Any) -> LeadView:
    """The lead as the state machine sees it; `context` carries what the engine computed (windows, queue)."""
    on_duty = context.pop("on_duty", {})
    return LeadView(
        id=lead.id,
        status=LeadStatus(lead.status),
        attempt=lead.attempt,
        phone=lead.phone,
        wake_at=lead.wake_at,
        managers=tuple(
            ManagerView(m.id, m.phone, free=m.busy_lead_id in (None, lead.id), on_duty=on_duty.get(m.id, True))
            for m in managers
        ),
        legs=tuple(leg_view(leg) for leg in legs),
        preferred_manager_id=lead.preferred_manager_id,
        scheduled_for=lead.scheduled_for,
        confirmed=lead.confirmed_at is not None,
        reminded=lead.reminded_at is not None,
        **context,
    )


def timeline(
    session: AsyncSession,
    lead_id: str,
    at: datetime,
    kind: str,
    detail: str,
    *,
    status: str | None = None,
    leg_id: str | None = None,
) -> None:
    session.add(LeadEvent(lead_id=lead_id, at=at, kind=kind, status=status, leg_id=leg_id, detail=detail))


def who(leg: CallLeg, managers: dict[int, Manager]) -> str:
    if leg.role == LegRole.VISITOR:
        return "visitor"
    manager = managers.get(leg.manager_id or -1)
    return f"manager {manager.name}" if manager else "manager"


async def apply_leg_event(
    session: AsyncSession, lead: Lead, leg: CallLeg, event: LegEvent, now: datetime, party: str
) -> bool:  # noqa: C901 - one branch per kind of report
    """Record what the provider said about a leg. True when the lead's situation may have changed."""
    if event.sid and not leg.provider_sid:
        leg.provider_sid = event.sid
    status = LegStatus(leg.status)
    if isinstance(event, PriceKnown):
        leg.price, leg.price_unit = event.price, event.unit
        return False
    if isinstance(event, RecordingReady):
        leg.recording_url = event.url
        timeline(session, lead.id, now, "recording", f"recording of the {party} leg is ready", leg_id=leg.id)
        return False
    if status is LegStatus.ENDED:
        if isinstance(event, LegEnded) and leg.duration is None and event.duration is not None:
            leg.duration = event.duration
        return False  # a late or duplicated report about a leg that is over
    if isinstance(event, LegRinging):
        if status.rank < LegStatus.RINGING.rank:
            leg.status = LegStatus.RINGING
            timeline(session, lead.id, now, "leg", f"{party}: ringing", leg_id=leg.id)
        return False
    if isinstance(event, LegAnswered):
        if status.rank < LegStatus.ANSWERED.rank:
            leg.status, leg.answered_at = LegStatus.ANSWERED, now
            timeline(session, lead.id, now, "leg", f"{party}: answered", leg_id=leg.id)
            return True
        return False
    if isinstance(event, KeyPressed):
        if leg.role == LegRole.MANAGER and not leg.accepted:
            leg.accepted = event.digits.startswith("1")
            if status.rank < LegStatus.ANSWERED.rank:
                leg.status, leg.answered_at = LegStatus.ANSWERED, now
            timeline(session, lead.id, now, "leg", f"{party}: pressed {event.digits or 'nothing'}", leg_id=leg.id)
            return leg.accepted
        return False
    if isinstance(event, LegEnded):
        end_leg(leg, event.reason, now, event.duration)
        leg.end_detail = event.detail
        text = f"{party}: ended ({event.reason.replace('_', ' ')}"
        text += f", talked {event.duration} s)" if leg.answered_at and event.duration else ")"
        if event.detail:
            text += f": {event.detail}"
        timeline(session, lead.id, now, "leg", text, leg_id=leg.id)
        if leg.manager_id is not None:
            await release_manager(session, leg.manager_id, lead.id)
        return True
    return False


def end_leg(leg: CallLeg, reason: EndReason, now: datetime, duration: int | None = None) -> None:
    leg.status, leg.end_reason, leg.ended_at = LegStatus.ENDED, reason, now
    if duration is not None:
        leg.duration = duration
    elif leg.answered_at is not None:
        leg.duration = round((now - leg.answered_at).total_seconds())


async def claim_manager(session: AsyncSession, manager_id: int, lead_id: str) -> None:
    query = (
        update(Manager)
        .where(Manager.id == manager_id)
        .where((Manager.busy_lead_id.is_(None)) | (Manager.busy_lead_id == lead_id))
        .values(busy_lead_id=lead_id)
    )
    if (await session.execute(query)).rowcount != 1:
        raise ManagerTaken(manager_id)


async def release_manager(session: AsyncSession, manager_id: int, lead_id: str) -> None:
    query = (
        update(Manager)
        .where(Manager.id == manager_id, Manager.busy_lead_id == lead_id)
        .values(busy_lead_id=None)
    )
    await session.execute(query)


async def write_decision(
    session: AsyncSession,
    lead: Lead,
    site: Site,
    legs: list[CallLeg],
    managers: list[Manager],
    decision: Decision,
    now: datetime,
) -> Plan:
    """Persist a decision: the lead's new state, the legs it is about to dial, the timeline."""
    plan = Plan(lead, site)
    by_id = {leg.id: leg for leg in legs}
    names = {m.id: m for m in managers}
    for action in decision.actions:
        if isinstance(action, SendText):
            plan.texts.append(action)
            timeline(session, lead.id, now, "sms", f"text message to the visitor: {action.kind}")
            if action.kind == "confirm":
                lead.confirmed_at = now
            elif action.kind == "reminder":
                lead.reminded_at = now
        elif isinstance(action, Hangup):
            leg = by_id[action.leg_id]
            if leg.status != LegStatus.ENDED:
                end_leg(leg, action.reason, now)
                if leg.manager_id is not None:
                    await release_manager(session, leg.manager_id, lead.id)
                    plan.released_managers = True
                timeline(session, lead.id, now, "leg", f"{who(leg, names)}: hung up by us ({action.reason.replace('_', ' ')})", leg_id=leg.id)
            if leg.provider_sid:
                plan.hangups.append((leg, action))
        else:
            if action.manager_id is not None:
                await claim_manager(session, action.manager_id, lead.id)
            leg = CallLeg(
                id=new_id(),
                lead_id=lead.id,
                step=action.step,
                role=action.role,
                manager_id=action.manager_id,
                to_number=action.to,
                bridged_to=action.bridge_leg_id,
                status=LegStatus.PENDING,
                created_at=now,
            )
            session.add(leg)
            plan.calls.append((leg, action))
            timeline(session, lead.id, now, "leg", f"{who(leg, names)}: dialing", leg_id=leg.id)
    plan.status_changed = decision.status != lead.status
    plan.step_changed = any(isinstance(a, PlaceCall) and a.role is LegRole.MANAGER for a in decision.actions)
    plan.step = sum(
        1 for leg in [*legs, *(c for c, _ in plan.calls)]
        if leg.role == LegRole.MANAGER and _attempt_of(leg.step) == decision.attempt
    )
    if plan.status_changed or decision.notes:
        timeline(session, lead.id, now, "status", "; ".join(decision.notes), status=decision.status)
    lead.status = decision.status.value
    lead.wake_at = decision.wake_at
    if decision.attempt != lead.attempt:  # a new attempt is a new promise, confirmed and reminded anew
        if not any(text.kind == "confirm" for text in plan.texts):
            lead.confirmed_at = None
        lead.reminded_at = None
    lead.attempt = decision.attempt
    lead.updated_at = now
    if decision.scheduled_for is not None:
        lead.scheduled_for = decision.scheduled_for
    if decision.outcome is not None:
        lead.outcome = decision.outcome
    if decision.status in TERMINAL:
        lead.ended_at = now
    try:
        await session.flush()  # the lead's version column turns a lost race into StaleDataError
    except StaleDataError:
        raise StaleLead(lead.id) from None
    return plan


async def set_sid(session: AsyncSession, leg_id: str, sid: str) -> None:
    query = (
        update(CallLeg)
        .where(CallLeg.id == leg_id, CallLeg.provider_sid.is_(None))
        .values(provider_sid=sid)
    )
    await session.execute(query)
    query = (
        update(CallLeg)
        .where(CallLeg.id == leg_id, CallLeg.status == LegStatus.PENDING)
        .values(status=LegStatus.INITIATED)
    )
    await session.execute(query)


async def lock_leg_to_dial(session: AsyncSession, lead_id: str, leg_id: str) -> bool:
    """Lock the lead; True when its leg `leg_id` is still waiting to be dialed (no call id, not ended)."""
    await lock_lead(session, lead_id)
    query = select(CallLeg.status, CallLeg.provider_sid).where(CallLeg.id == leg_id)
    row = (await session.execute(query)).one_or_none()
    return row is not None and row.status == LegStatus.PENDING and row.provider_sid is None


async def provider_sid(session: AsyncSession, leg_id: str) -> str | None:
    return (await session.execute(select(CallLeg.provider_sid).where(CallLeg.id == leg_id))).scalar_one_or_none()


async def pending_legs(session: AsyncSession, older_than: datetime) -> list[CallLeg]:
    """Legs written but never confirmed by the provider: their dialing was interrupted."""
    query = (
        select(CallLeg)
        .join(Lead, Lead.id == CallLeg.lead_id)
        .where(CallLeg.status == LegStatus.PENDING, CallLeg.provider_sid.is_(None))
        .where(CallLeg.created_at <= older_than)
        .where(Lead.status.not_in([s.value for s in TERMINAL]))
    )
    return list((await session.execute(query)).scalars())


async def queue_ahead(session: AsyncSession, lead: Lead) -> int:
    """How many leads of the same site have waited in the queue longer than this one."""
    earlier = (Lead.created_at < lead.created_at) | ((Lead.created_at == lead.created_at) & (Lead.id < lead.id))
    query = select(func.count()).select_from(Lead).where(
        Lead.site_id == lead.site_id, Lead.status == LeadStatus.QUEUED, earlier
    )
    return int((await session.execute(query)).scalar_one())


async def leads_before(session: AsyncSession, lead: Lead) -> int:
    """How many call requests the site had before this one (round-robin rotation)."""
    query = select(func.count()).select_from(Lead).where(
        Lead.site_id == lead.site_id, Lead.kind == "call", Lead.created_at < lead.created_at
    )
    return int((await session.execute(query)).scalar_one())


async def wake_oldest_queued(session: AsyncSession, site_id: int, now: datetime) -> bool:
    oldest = (
        select(Lead.id)
        .where(Lead.site_id == site_id, Lead.status == LeadStatus.QUEUED)
        .order_by(Lead.created_at, Lead.id)
        .limit(1)
        .scalar_subquery()
    )
    result = await session.execute(update(Lead).where(Lead.id == oldest).values(wake_at=now))
    return result.rowcount == 1
