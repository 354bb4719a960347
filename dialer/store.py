"""Every database operation the engine needs. The engine asks; it never writes SQL itself.

The engine's steps run on plain connections with statements built once (SQLAlchemy Core), reading
`rows.LeadRow`/`rows.LegRow` records and writing back only the columns a step changed: one engine step is
one transaction of a handful of statements. The web side keeps the ORM (`active_managers` below).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Update, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from .events import KeyPressed, LegAnswered, LegEnded, LegEvent, LegRinging, PriceKnown, RecordingReady
from .machine import Decision, Hangup, LeadView, LegView, ManagerView, PlaceCall, SendText
from .models import CallLeg, Lead, LeadEvent, Manager, Site, new_id
from .rows import LeadRow, LegRow
from .states import TERMINAL, EndReason, LeadStatus, LegRole, LegStatus

leads = Lead.__table__
legs_table = CallLeg.__table__
managers_table = Manager.__table__
sites_table = Site.__table__
events_table = LeadEvent.__table__

ManagerRow = Row[Any]  # id, name, phone, position, working_hours, busy_lead_id
SiteRow = Row[Any]


class StaleLead(Exception):
    """Someone else moved the lead on between our read and our write; the step is tried again."""


class ManagerTaken(Exception):
    """The manager we meant to ring was claimed for another lead a moment ago."""


@dataclass
class Plan:
    """What to ask of the provider once the step is committed."""

    lead: LeadRow
    site: SiteRow
    calls: list[tuple[LegRow, PlaceCall]] = field(default_factory=list)
    hangups: list[tuple[LegRow, Hangup]] = field(default_factory=list)
    texts: list[SendText] = field(default_factory=list)
    status_changed: bool = False
    step_changed: bool = False
    released_managers: bool = False
    step: int = 0


@dataclass
class Step:
    """One engine step's unit of work: the timeline lines and new legs it adds, written by `flush`."""

    conn: AsyncConnection
    now: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    released_managers: bool = False  # a manager became free: the site's queue may move

    def timeline(self, lead_id: str, kind: str, detail: str, *, status: str | None = None,
                 leg_id: str | None = None) -> None:
        self.events.append(dict(lead_id=lead_id, at=self.now, kind=kind, status=status, leg_id=leg_id,
                                detail=detail))

    async def flush(self, lead: LeadRow | None, legs: list[LegRow]) -> None:
        """Write the changed and new legs, the timeline, then the lead (checking its version)."""
        new = [leg.values() for leg in legs if leg.is_new]
        if new:
            await self.conn.execute(insert(legs_table), new)
        for leg in legs:
            if not leg.is_new:
                changes = leg.changes()
                if changes:
                    await self.conn.execute(_update_by_id(legs_table, frozenset(changes)), _params(changes, leg.id))
            leg.mark_written()
        if self.events:
            await self.conn.execute(insert(events_table), self.events)
            self.events = []
        if lead is not None:
            await write_lead(self.conn, lead)


def _params(changes: dict[str, Any], row_id: Any) -> dict[str, Any]:
    params = {f"v_{name}": value for name, value in changes.items()}
    params["w_id"] = row_id
    return params


@lru_cache(maxsize=256)
def _update_by_id(table: Any, columns: frozenset[str]) -> Update:
    return (
        update(table)
        .where(table.c.id == bindparam("w_id"))
        .values({table.c[name]: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns})
    )


@lru_cache(maxsize=256)
def _update_lead(columns: frozenset[str]) -> Update:
    values = {leads.c[name]: bindparam(f"v_{name}", type_=leads.c[name].type) for name in columns}
    values[leads.c.version] = bindparam("v_version", type_=leads.c.version.type)
    return update(leads).where(leads.c.id == bindparam("w_id"), leads.c.version == bindparam("w_version")).values(values)


async def write_lead(conn: AsyncConnection, lead: LeadRow) -> None:
    """Write what the step changed of the lead; its version turns a lost race into `StaleLead`."""
    changes = lead.changes()
    if not changes:
        return
    changes.pop("version", None)
    params = _params(changes, lead.id)
    params["w_version"], params["v_version"] = lead.version, lead.version + 1
    if (await conn.execute(_update_lead(frozenset(changes)), params)).rowcount != 1:
        raise StaleLead(lead.id)
    lead.version += 1
    lead.mark_written()


# reads ---------------------------------------------------------------------------------------------

_LEAD_COLUMNS = [leads.c[name] for name in LeadRow.COLUMNS]
_LEG_COLUMNS = [legs_table.c[name] for name in LegRow.COLUMNS]
_MANAGER_COLUMNS = [managers_table.c[name] for name in ("id", "name", "phone", "position", "working_hours",
                                                         "busy_lead_id")]

_LEAD = select(*_LEAD_COLUMNS).where(leads.c.id == bindparam("id"))
# FOR NO KEY UPDATE on PostgreSQL: steps on one lead exclude each other, while a leg report inserting a
# timeline line (whose foreign key takes a KEY SHARE lock on the lead) need not wait for them.
_LOCK_LEAD = _LEAD.with_for_update(key_share=True)
_LOCK_LEAD_SKIP = _LEAD.with_for_update(key_share=True, skip_locked=True)
_N_LEAD = len(_LEAD_COLUMNS)


def _lead_with_legs(**lock: bool) -> Any:
    """The lead and its legs in one round trip (one row per leg; a lead without legs is one row)."""
    return (
        select(*_LEAD_COLUMNS, *_LEG_COLUMNS)
        .select_from(leads.outerjoin(legs_table, legs_table.c.lead_id == leads.c.id))
        .where(leads.c.id == bindparam("id"))
        .order_by(legs_table.c.created_at, legs_table.c.step)
        .with_for_update(of=leads, key_share=True, **lock)
    )


_LOCK_WITH_LEGS = _lead_with_legs()
_LOCK_WITH_LEGS_SKIP = _lead_with_legs(skip_locked=True)
_LEGS = (
    select(*_LEG_COLUMNS)
    .where(legs_table.c.lead_id == bindparam("lead_id"))
    .order_by(legs_table.c.created_at, legs_table.c.step)
)
_MANAGERS = (
    select(*_MANAGER_COLUMNS)
    .where(managers_table.c.site_id == bindparam("site_id"), managers_table.c.active.is_(True))
    .order_by(managers_table.c.position, managers_table.c.id)
)
_MANAGER_NAME = select(managers_table.c.name).where(managers_table.c.id == bindparam("id"))
_SITE = select(sites_table).where(sites_table.c.id == bindparam("id"))
_LEAD_OF_LEG = select(legs_table.c.lead_id).where(legs_table.c.id == bindparam("id"))
_DUE = (
    select(leads.c.id)
    .where(leads.c.wake_at.is_not(None), leads.c.wake_at <= bindparam("now", type_=leads.c.wake_at.type))
    .order_by(leads.c.wake_at, leads.c.created_at, leads.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_NEXT_WAKE = select(func.min(leads.c.wake_at))


async def lock_lead(conn: AsyncConnection, lead_id: str, *, skip_locked: bool = False) -> LeadRow | None:
    row = (await conn.execute(_LOCK_LEAD_SKIP if skip_locked else _LOCK_LEAD, {"id": lead_id})).first()
    return LeadRow(row) if row is not None else None


async def lock_lead_with_legs(
    conn: AsyncConnection, lead_id: str, *, skip_locked: bool = False
) -> tuple[LeadRow | None, list[LegRow]]:
    rows = (await conn.execute(_LOCK_WITH_LEGS_SKIP if skip_locked else _LOCK_WITH_LEGS, {"id": lead_id})).all()
    if not rows:
        return None, []
    lead = LeadRow(rows[0][:_N_LEAD])
    return lead, [LegRow(row[_N_LEAD:]) for row in rows if row[_N_LEAD] is not None]


async def get_lead(conn: AsyncConnection, lead_id: str) -> LeadRow | None:
    row = (await conn.execute(_LEAD, {"id": lead_id})).first()
    return LeadRow(row) if row is not None else None


async def get_site(conn: AsyncConnection, site_id: int) -> SiteRow:
    return (await conn.execute(_SITE, {"id": site_id})).one()


async def lead_id_for_leg(conn: AsyncConnection, leg_id: str) -> str | None:
    return (await conn.execute(_LEAD_OF_LEG, {"id": leg_id})).scalar_one_or_none()


async def due_lead_ids(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """Leads whose wake-up time has come, leaving out those another engine is stepping right now."""
    return list((await conn.execute(_DUE, {"now": now, "limit": limit})).scalars())


async def next_wake(conn: AsyncConnection) -> datetime | None:
    return (await conn.execute(_NEXT_WAKE)).scalar_one_or_none()


async def legs_of(conn: AsyncConnection, lead_id: str) -> list[LegRow]:
    return [LegRow(row) for row in await conn.execute(_LEGS, {"lead_id": lead_id})]


async def managers_of(conn: AsyncConnection, site_id: int) -> list[ManagerRow]:
    """The site's active managers in hunt order, with who is busy right now."""
    return list(await conn.execute(_MANAGERS, {"site_id": site_id}))


async def manager_name(conn: AsyncConnection, manager_id: int) -> str | None:
    return (await conn.execute(_MANAGER_NAME, {"id": manager_id})).scalar_one_or_none()


async def active_managers(session: AsyncSession, site_id: int) -> list[Manager]:
    """The same list as ORM objects, for the web side."""
    query = (
        select(Manager)
        .where(Manager.site_id == site_id, Manager.active.is_(True))
        .order_by(Manager.position, Manager.id)
    )
    return list((await session.execute(query)).scalars())


def _attempt_of(step: str) -> int:
    return int(step.split(":", 1)[0][1:])


def leg_view(leg: LegRow) -> LegView:
    return LegView(
        id=leg.id,
        attempt=_attempt_of(leg.step),
        role=LegRole(leg.role),
        status=LegStatus(leg.status),
        manager_id=leg.manager_id,
        accepted=bool(leg.accepted),
        end_reason=EndReason(leg.end_reason) if leg.end_reason else None,
        detail=leg.end_detail,
    )


def lead_view(lead: LeadRow, managers: list[ManagerRow], legs: list[LegRow], **context: Any) -> LeadView:
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


def who(leg: LegRow, names: dict[int, str]) -> str:
    if leg.role == LegRole.VISITOR:
        return "visitor"
    name = names.get(leg.manager_id or -1)
    return f"manager {name}" if name else "manager"


# one report about a leg ----------------------------------------------------------------------------

async def apply_leg_event(step: Step, lead: LeadRow, leg: LegRow, event: LegEvent, party: str) -> bool:  # noqa: C901
    """Record what the provider said about a leg. True when the lead's situation may have changed."""
    now = step.now
    if event.sid and not leg.provider_sid:
        leg.provider_sid = event.sid
    status = LegStatus(leg.status)
    if isinstance(event, PriceKnown):
        leg.price, leg.price_unit = event.price, event.unit
        return False
    if isinstance(event, RecordingReady):
        leg.recording_url = event.url
        step.timeline(lead.id, "recording", f"recording of the {party} leg is ready", leg_id=leg.id)
        return False
    if status is LegStatus.ENDED:
        if isinstance(event, LegEnded) and leg.duration is None and event.duration is not None:
            leg.duration = event.duration
        return False  # a late or duplicated report about a leg that is over
    if isinstance(event, LegRinging):
        if status.rank < LegStatus.RINGING.rank:
            leg.status = LegStatus.RINGING
            step.timeline(lead.id, "leg", f"{party}: ringing", leg_id=leg.id)
        return False
    if isinstance(event, LegAnswered):
        if status.rank < LegStatus.ANSWERED.rank:
            leg.status, leg.answered_at = LegStatus.ANSWERED, now
            step.timeline(lead.id, "leg", f"{party}: answered", leg_id=leg.id)
            return True
        return False
    if isinstance(event, KeyPressed):
        if leg.role == LegRole.MANAGER and not leg.accepted:
            leg.accepted = event.digits.startswith("1")
            if status.rank < LegStatus.ANSWERED.rank:
                leg.status, leg.answered_at = LegStatus.ANSWERED, now
            step.timeline(lead.id, "leg", f"{party}: pressed {event.digits or 'nothing'}", leg_id=leg.id)
            return leg.accepted
        return False
    if isinstance(event, LegEnded):
        end_leg(leg, event.reason, now, event.duration)
        leg.end_detail = event.detail
        text = f"{party}: ended ({event.reason.replace('_', ' ')}"
        text += f", talked {event.duration} s)" if leg.answered_at and event.duration else ")"
        if event.detail:
            text += f": {event.detail}"
        step.timeline(lead.id, "leg", text, leg_id=leg.id)
        if leg.manager_id is not None:
            await release_manager(step.conn, leg.manager_id, lead.id)
            step.released_managers = True
        return True
    return False


def end_leg(leg: LegRow, reason: EndReason, now: datetime, duration: int | None = None) -> None:
    leg.status, leg.end_reason, leg.ended_at = LegStatus.ENDED, reason, now
    if duration is not None:
        leg.duration = duration
    elif leg.answered_at is not None:
        leg.duration = round((now - leg.answered_at).total_seconds())


_CLAIM = (
    update(managers_table)
    .where(managers_table.c.id == bindparam("w_id"))
    .where(managers_table.c.busy_lead_id.is_(None) | (managers_table.c.busy_lead_id == bindparam("w_lead")))
    .values(busy_lead_id=bindparam("v_lead"))
)
_RELEASE = (
    update(managers_table)
    .where(managers_table.c.id == bindparam("w_id"), managers_table.c.busy_lead_id == bindparam("w_lead"))
    .values(busy_lead_id=None)
)


async def claim_manager(conn: AsyncConnection, manager_id: int, lead_id: str) -> None:
    result = await conn.execute(_CLAIM, {"w_id": manager_id, "w_lead": lead_id, "v_lead": lead_id})
    if result.rowcount != 1:
        raise ManagerTaken(manager_id)


async def release_manager(conn: AsyncConnection, manager_id: int, lead_id: str) -> None:
    await conn.execute(_RELEASE, {"w_id": manager_id, "w_lead": lead_id})


_RINGING = (
    update(legs_table)
    .where(
        legs_table.c.id == bindparam("w_id"),
        legs_table.c.status.in_([LegStatus.PENDING.value, LegStatus.INITIATED.value]),
    )
    .values(status=LegStatus.RINGING.value, provider_sid=func.coalesce(legs_table.c.provider_sid, bindparam("v_sid")))
    .returning(legs_table.c.lead_id, legs_table.c.role, legs_table.c.manager_id)
)
_PRICE = (
    update(legs_table)
    .where(legs_table.c.id == bindparam("w_id"))
    .values(
        price=bindparam("v_price", type_=legs_table.c.price.type),
        price_unit=bindparam("v_unit"),
        provider_sid=func.coalesce(legs_table.c.provider_sid, bindparam("v_sid")),
    )
)


async def mark_ringing(conn: AsyncConnection, leg_id: str, sid: str | None) -> Row[Any] | None:
    """A leg started ringing: one conditional update, no lock on the lead (the report decides nothing).
    Returns the leg's lead, role and manager when it changed; None for a late or duplicated report."""
    return (await conn.execute(_RINGING, {"w_id": leg_id, "v_sid": sid})).first()


async def record_price(conn: AsyncConnection, event: PriceKnown) -> None:
    params = {"w_id": event.leg_id, "v_price": event.price, "v_unit": event.unit, "v_sid": event.sid}
    await conn.execute(_PRICE, params)


# a decision ----------------------------------------------------------------------------------------

async def write_decision(
    step: Step,
    lead: LeadRow,
    site: SiteRow,
    legs: list[LegRow],
    managers: list[ManagerRow],
    decision: Decision,
) -> Plan:
    """Persist a decision: the lead's new state, the legs it is about to dial, the timeline."""
    now = step.now
    plan = Plan(lead, site, released_managers=step.released_managers)
    by_id = {leg.id: leg for leg in legs}
    names = {m.id: m.name for m in managers}
    new_legs: list[LegRow] = []
    for action in decision.actions:
        if isinstance(action, SendText):
            plan.texts.append(action)
            step.timeline(lead.id, "sms", f"text message to the visitor: {action.kind}")
            if action.kind == "confirm":
                lead.confirmed_at = now
            elif action.kind == "reminder":
                lead.reminded_at = now
        elif isinstance(action, Hangup):
            leg = by_id[action.leg_id]
            if leg.status != LegStatus.ENDED:
                end_leg(leg, action.reason, now)
                if leg.manager_id is not None:
                    await release_manager(step.conn, leg.manager_id, lead.id)
                    plan.released_managers = True
                text = f"{who(leg, names)}: hung up by us ({action.reason.replace('_', ' ')})"
                step.timeline(lead.id, "leg", text, leg_id=leg.id)
            if leg.provider_sid:
                plan.hangups.append((leg, action))
        else:
            if action.manager_id is not None:
                await claim_manager(step.conn, action.manager_id, lead.id)
            leg = LegRow.fresh(
                id=new_id(), lead_id=lead.id, step=action.step, role=action.role, manager_id=action.manager_id,
                to_number=action.to, bridged_to=action.bridge_leg_id, status=LegStatus.PENDING, accepted=False,
                created_at=now,
            )
            new_legs.append(leg)
            plan.calls.append((leg, action))
            step.timeline(lead.id, "leg", f"{who(leg, names)}: dialing", leg_id=leg.id)
    plan.status_changed = decision.status != lead.status
    plan.step_changed = any(isinstance(a, PlaceCall) and a.role is LegRole.MANAGER for a in decision.actions)
    plan.step = sum(
        1 for leg in [*legs, *new_legs]
        if leg.role == LegRole.MANAGER and _attempt_of(leg.step) == decision.attempt
    )
    if plan.status_changed or decision.notes:
        step.timeline(lead.id, "status", "; ".join(decision.notes), status=decision.status)
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
    await step.flush(lead, [*legs, *new_legs])
    return plan


# dialing -------------------------------------------------------------------------------------------

_LEG_TO_DIAL = (
    select(legs_table.c.status, legs_table.c.provider_sid)
    .join(leads, leads.c.id == legs_table.c.lead_id)
    .where(legs_table.c.id == bindparam("leg"), leads.c.id == bindparam("lead"))
    .with_for_update(of=leads, key_share=True)
)
_SET_SID = (
    update(legs_table)
    .where(legs_table.c.id == bindparam("w_id"))
    .values(
        provider_sid=func.coalesce(legs_table.c.provider_sid, bindparam("v_sid")),
        status=func.coalesce(  # pending becomes initiated; a report that came first is kept
            func.nullif(legs_table.c.status, LegStatus.PENDING.value), LegStatus.INITIATED.value
        ),
    )
)
_PROVIDER_SID = select(legs_table.c.provider_sid).where(legs_table.c.id == bindparam("id"))


async def lock_leg_to_dial(conn: AsyncConnection, lead_id: str, leg_id: str) -> bool:
    """Lock the lead; True when its leg `leg_id` is still waiting to be dialed (no call id, not ended)."""
    row = (await conn.execute(_LEG_TO_DIAL, {"leg": leg_id, "lead": lead_id})).first()
    return row is not None and row.status == LegStatus.PENDING and row.provider_sid is None


async def set_sid(conn: AsyncConnection, leg_id: str, sid: str) -> None:
    await conn.execute(_SET_SID, {"w_id": leg_id, "v_sid": sid})


async def provider_sid(conn: AsyncConnection, leg_id: str) -> str | None:
    return (await conn.execute(_PROVIDER_SID, {"id": leg_id})).scalar_one_or_none()


_PENDING_LEGS = (
    select(*_LEG_COLUMNS)
    .join(leads, leads.c.id == legs_table.c.lead_id)
    .where(legs_table.c.status == LegStatus.PENDING.value, legs_table.c.provider_sid.is_(None))
    .where(legs_table.c.created_at <= bindparam("cutoff", type_=legs_table.c.created_at.type))
    .where(leads.c.status.not_in([s.value for s in TERMINAL]))
)


async def pending_legs(conn: AsyncConnection, older_than: datetime) -> list[LegRow]:
    """Legs written but never confirmed by the provider: their dialing was interrupted."""
    return [LegRow(row) for row in await conn.execute(_PENDING_LEGS, {"cutoff": older_than})]


# the queue -----------------------------------------------------------------------------------------

_QUEUE_AHEAD = select(func.count()).select_from(leads).where(
    leads.c.site_id == bindparam("site_id"),
    leads.c.status == LeadStatus.QUEUED.value,
    (leads.c.created_at < bindparam("created_at", type_=leads.c.created_at.type))
    | ((leads.c.created_at == bindparam("created_at", type_=leads.c.created_at.type)) & (leads.c.id < bindparam("id"))),
)
_LEADS_BEFORE = select(func.count()).select_from(leads).where(
    leads.c.site_id == bindparam("site_id"),
    leads.c.kind == "call",
    leads.c.created_at < bindparam("created_at", type_=leads.c.created_at.type),
)


async def queue_ahead(conn: AsyncConnection | AsyncSession, lead: LeadRow | Lead) -> int:
    """How many leads of the same site have waited in the queue longer than this one."""
    params = {"site_id": lead.site_id, "created_at": lead.created_at, "id": lead.id}
    return int((await conn.execute(_QUEUE_AHEAD, params)).scalar_one())


async def leads_before(conn: AsyncConnection, lead: LeadRow) -> int:
    """How many call requests the site had before this one (round-robin rotation)."""
    params = {"site_id": lead.site_id, "created_at": lead.created_at}
    return int((await conn.execute(_LEADS_BEFORE, params)).scalar_one())


_OLDEST_QUEUED = (
    select(leads.c.id)
    .where(leads.c.site_id == bindparam("w_site"), leads.c.status == LeadStatus.QUEUED.value)
    .order_by(leads.c.created_at, leads.c.id)
    .limit(1)
    .scalar_subquery()
)
_WAKE_OLDEST = update(leads).where(leads.c.id == _OLDEST_QUEUED).values(
    wake_at=bindparam("v_now", type_=leads.c.wake_at.type)
)


async def wake_oldest_queued(conn: AsyncConnection, site_id: int, now: datetime) -> bool:
    result = await conn.execute(_WAKE_OLDEST, {"w_site": site_id, "v_now": now})
    return result.rowcount == 1
