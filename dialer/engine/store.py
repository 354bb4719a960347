"""Every database operation the engine needs: reads, locks and writes, no rules. The engine asks; it
never writes SQL itself.

The engine steps many leads in one transaction (see `dialer/engine/inbox.py`): it locks them with their legs
and their sites' managers in two queries, the rules (`dialer/core/apply.py`) change the records in memory
(`dialer/core/records.py`), then `flush` writes back only the columns that changed and the step's
timeline, a few statements for the whole batch. Statements are built once (SQLAlchemy Core).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Update, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.core import event_codec
from dialer.core.events import LegEvent
from dialer.core.queue_order import Waiting
from dialer.core.records import LeadRow, LegRow, ManagerRow, attempt_of
from dialer.core.site_config import SiteConfig
from dialer.core.states import TERMINAL, LeadStatus, LegRole, LegStatus
from dialer.core.step import Step
from dialer.db.models import CallLeg, HeldEvent, Lead, LeadEvent, Manager, Site, table_of

leads = leads_table = table_of(Lead)
legs_table = table_of(CallLeg)
managers_table = table_of(Manager)
sites_table = table_of(Site)
events_table = table_of(LeadEvent)
held_table = table_of(HeldEvent)

SiteRow = SiteConfig  # a site as the engine reads it (dialer/sites/cache.py)


async def flush(
    conn: AsyncConnection, step: Step, leads: list[LeadRow], legs: list[LegRow], managers: list[ManagerRow]
) -> None:
    """Write the new and changed legs, the managers claimed or freed, the step's timeline, then the leads
    (each changed lead's version goes up by one: the web side's optimistic checks rely on it)."""
    new = [leg.values() for leg in legs if leg.is_new]
    if new:
        await conn.execute(insert(legs_table), new)
    await _update_changed(conn, legs_table, legs)
    await _update_changed(conn, managers_table, managers)
    if step.lines:
        await conn.execute(insert(events_table), [line._asdict() for line in step.lines])
        step.lines = []
    for lead in leads:
        if lead.changes():
            lead.version += 1
    await _update_changed(conn, leads_table, leads)


async def _update_changed(conn: AsyncConnection, table: Any, records: list[Any]) -> None:
    """One UPDATE per set of changed columns, executed for every record that changed those."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r.id):  # rows locked in id order (the lock order)
        if record.is_new:
            record.mark_written()
            continue
        changes = record.changes()
        if changes:
            groups.setdefault(frozenset(changes), []).append(_params(changes, record.id))
            record.mark_written()
    for columns, params in groups.items():
        await conn.execute(_update_by_id(table, columns), params)


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


# reads ---------------------------------------------------------------------------------------------

_LEAD_COLUMNS = [leads.c[name] for name in LeadRow.COLUMNS]
_LEG_COLUMNS = [legs_table.c[name] for name in LegRow.COLUMNS]
_MANAGER_COLUMNS = [managers_table.c[name] for name in ManagerRow.COLUMNS]
_N_LEAD = len(_LEAD_COLUMNS)
_LEAD = select(*_LEAD_COLUMNS).where(leads.c.id == bindparam("id"))


def _leads_with_legs(**lock: bool) -> Any:
    """Leads and their legs in one round trip (a row per leg; a lead without legs is one row), locked in
    id order so that engines in several processes never wait on each other in a circle. FOR NO KEY
    UPDATE on PostgreSQL: steps on one lead exclude each other, while a leg report inserting a timeline
    line (its foreign key takes a KEY SHARE lock on the lead) need not wait."""
    return (
        select(*_LEAD_COLUMNS, *_LEG_COLUMNS)
        .select_from(leads.outerjoin(legs_table, legs_table.c.lead_id == leads.c.id))
        .where(leads.c.id.in_(bindparam("ids", expanding=True)))
        .order_by(leads.c.id, legs_table.c.created_at, legs_table.c.step)
        .with_for_update(of=leads, key_share=True, **lock)
    )


_LOCK_LEADS = _leads_with_legs()
_LOCK_LEADS_SKIP = _leads_with_legs(skip_locked=True)
_LOCK_MANAGERS = (
    select(*_MANAGER_COLUMNS)
    .where(managers_table.c.site_id.in_(bindparam("sites", expanding=True)))
    .order_by(managers_table.c.id)
    .with_for_update(key_share=True)
)
_LEAD_OF_LEG = select(legs_table.c.lead_id).where(legs_table.c.id == bindparam("id"))
_DUE = (
    select(leads.c.id)
    .where(leads.c.wake_at.is_not(None), leads.c.wake_at <= bindparam("now", type_=leads.c.wake_at.type))
    .order_by(leads.c.wake_at, leads.c.created_at, leads.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_NEXT_WAKE = select(func.min(leads.c.wake_at))
_MANAGER_NAMES = select(managers_table.c.id, managers_table.c.name).where(
    managers_table.c.id.in_(bindparam("ids", expanding=True))
)


async def lock_leads(
    conn: AsyncConnection, lead_ids: list[str], *, skip_locked: bool = False
) -> dict[str, tuple[LeadRow, list[LegRow]]]:
    """Lock the leads `lead_ids` (those another transaction holds are left out with `skip_locked`)."""
    found: dict[str, tuple[LeadRow, list[LegRow]]] = {}
    if not lead_ids:
        return found
    for row in await conn.execute(_LOCK_LEADS_SKIP if skip_locked else _LOCK_LEADS, {"ids": lead_ids}):
        entry = found.get(row[0])
        if entry is None:
            entry = found[row[0]] = (LeadRow(row[:_N_LEAD]), [])
        if row[_N_LEAD] is not None:
            entry[1].append(LegRow(row[_N_LEAD:]))
    return found


async def lock_managers(conn: AsyncConnection, site_ids: set[int]) -> dict[int, list[ManagerRow]]:
    """Every manager of these sites (active or not), locked: claims and releases are made in memory."""
    by_site: dict[int, list[ManagerRow]] = {site_id: [] for site_id in site_ids}
    if site_ids:
        for row in await conn.execute(_LOCK_MANAGERS, {"sites": sorted(site_ids)}):
            by_site[row.site_id].append(ManagerRow(row))
    for managers in by_site.values():
        managers.sort(key=lambda m: (m.position, m.id))
    return by_site


async def lead_id_for_leg(conn: AsyncConnection, leg_id: str) -> str | None:
    return (await conn.execute(_LEAD_OF_LEG, {"id": leg_id})).scalar_one_or_none()


async def due_lead_ids(conn: AsyncConnection, now: datetime, limit: int) -> list[str]:
    """Leads whose wake-up time has come, leaving out those another engine is stepping right now."""
    return list((await conn.execute(_DUE, {"now": now, "limit": limit})).scalars())


async def next_wake(conn: AsyncConnection) -> datetime | None:
    wake: datetime | None = (await conn.execute(_NEXT_WAKE)).scalar_one_or_none()
    return wake


async def manager_names(conn: AsyncConnection, manager_ids: set[int]) -> dict[int, str]:
    return {row.id: row.name for row in await conn.execute(_MANAGER_NAMES, {"ids": sorted(manager_ids)})}


async def get_lead(conn: AsyncConnection, lead_id: str) -> LeadRow | None:
    row = (await conn.execute(_LEAD, {"id": lead_id})).first()
    return LeadRow(row) if row is not None else None


# dialing -------------------------------------------------------------------------------------------
# A leg is dialed by the engine that claims it: a conditional UPDATE, committed before the provider is
# asked. The condition is on the leg's own row, so PostgreSQL re-checks it on the row's newest version
# after waiting for another writer (a SELECT ... FOR UPDATE OF leads re-checks only the lead), and SQLite
# has one writer at a time: at any isolation, of two claims of one leg one updates the row, the other none.

_UNDIALED = (legs_table.c.status == LegStatus.PENDING.value, legs_table.c.provider_sid.is_(None))
_CLAIMED_AT = bindparam("v_at", type_=legs_table.c.dial_claimed_at.type)
_CLAIM = (
    update(legs_table)
    .where(legs_table.c.id.in_(bindparam("legs", expanding=True)), *_UNDIALED)
    .where(legs_table.c.dial_claimed_at.is_(None))
    .values(dial_claimed_at=_CLAIMED_AT, dial_claimed_by=bindparam("v_by"))
    .returning(legs_table.c.id)
)
_RECLAIM = (
    update(legs_table)
    .where(legs_table.c.id == bindparam("w_id"), *_UNDIALED)
    .where(
        legs_table.c.dial_claimed_at == bindparam("w_at", type_=legs_table.c.dial_claimed_at.type),
        legs_table.c.dial_claimed_by == bindparam("w_by"),
    )
    .values(dial_claimed_at=_CLAIMED_AT, dial_claimed_by=bindparam("v_by"))
    .returning(legs_table.c.id)
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
_SIDS_AND_STATUS = select(legs_table.c.id, legs_table.c.provider_sid, legs_table.c.status).where(
    legs_table.c.id.in_(bindparam("legs", expanding=True))
)


async def claim_legs(conn: AsyncConnection, leg_ids: list[str], engine: str, now: datetime) -> set[str]:
    """Take these legs to dial; returns those this call took (not dialed, not ended, claimed by nobody)."""
    if not leg_ids:
        return set()
    params = {"legs": sorted(leg_ids), "v_at": now, "v_by": engine}
    return set((await conn.execute(_CLAIM, params)).scalars())


async def reclaim_leg(conn: AsyncConnection, leg: LegRow, engine: str, now: datetime) -> bool:
    """Take over a claim that was never confirmed, as `leg` last showed it; False when somebody else
    did first (or the leg was dialed or ended meanwhile)."""
    params = {"w_id": leg.id, "w_at": leg.dial_claimed_at, "w_by": leg.dial_claimed_by, "v_at": now, "v_by": engine}
    return (await conn.execute(_RECLAIM, params)).first() is not None


async def set_sids(conn: AsyncConnection, sids: dict[str, str]) -> dict[str, tuple[str | None, str]]:
    """Record the calls placed; returns each leg's call id and status as now written (a call id other
    than ours: somebody else's call for the leg came first; an ended leg: it ended before we knew)."""
    if not sids:
        return {}
    await conn.execute(_SET_SID, [{"w_id": leg_id, "v_sid": sids[leg_id]} for leg_id in sorted(sids)])
    rows = await conn.execute(_SIDS_AND_STATUS, {"legs": sorted(sids)})
    return {row.id: (row.provider_sid, row.status) for row in rows}


_LEG_OF_SID = select(legs_table.c.id).where(legs_table.c.provider_sid == bindparam("sid")).limit(1)


async def leg_of_sid(conn: AsyncConnection, sid: str) -> str | None:
    """The leg that has this provider call id, if any."""
    leg_id: str | None = (await conn.execute(_LEG_OF_SID, {"sid": sid})).scalar()
    return leg_id


_SIDS_ELSEWHERE = select(legs_table.c.id, legs_table.c.provider_sid).where(
    legs_table.c.provider_sid.in_(bindparam("sids", expanding=True))
)


async def sids_elsewhere(conn: AsyncConnection, sids: dict[str, str]) -> set[str]:
    """Of these (leg -> call id), the legs whose call id another leg already has."""
    if not sids:
        return set()
    owners = {row.provider_sid: row.id for row in await conn.execute(_SIDS_ELSEWHERE, {"sids": sorted(set(sids.values()))})}
    return {leg_id for leg_id, sid in sids.items() if owners.get(sid, leg_id) != leg_id}


_PROVIDER_SID = select(legs_table.c.provider_sid).where(legs_table.c.id == bindparam("id"))


async def provider_sid(conn: AsyncConnection, leg_id: str) -> str | None:
    return (await conn.execute(_PROVIDER_SID, {"id": leg_id})).scalar_one_or_none()


_PENDING_LEGS = (
    select(*_LEG_COLUMNS)
    .join(leads, leads.c.id == legs_table.c.lead_id)
    .where(*_UNDIALED, leads.c.status.not_in([s.value for s in TERMINAL]))
    .where(
        (legs_table.c.dial_claimed_at.is_(None)
         & (legs_table.c.created_at <= bindparam("written", type_=legs_table.c.created_at.type))
         # put back (the provider's rate limit): not before the time it was put back to
         & (legs_table.c.starts_at.is_(None)
            | (legs_table.c.starts_at <= bindparam("now", type_=legs_table.c.starts_at.type))))
        | (legs_table.c.dial_claimed_at <= bindparam("claimed", type_=legs_table.c.dial_claimed_at.type))
    )
)


async def pending_legs(
    conn: AsyncConnection, written_before: datetime, claimed_before: datetime, now: datetime | None = None
) -> list[LegRow]:
    """Legs never confirmed by the provider: written before `written_before` and never claimed (the step
    committed, its dial never started; or it was put back, and its time `now` has come), or claimed
    before `claimed_before` (the claimer died meanwhile)."""
    params = {"written": written_before, "claimed": claimed_before, "now": now or written_before}
    return [LegRow(row) for row in await conn.execute(_PENDING_LEGS, params)]


# pacing (dialer/engine/pacing.py) --------------------------------------------------------------------
# A paced leg's claim is dated at its slot, when its create will be sent: recovery takes a claim over only
# CLAIM_GRACE after that, never while the create is still waiting for its turn.

_OURS = (legs_table.c.id == bindparam("w_id"), legs_table.c.dial_claimed_by == bindparam("w_by"), *_UNDIALED)
_PACE = update(legs_table).where(*_OURS).values(
    dial_claimed_at=bindparam("v_at", type_=legs_table.c.dial_claimed_at.type),
    starts_at=bindparam("v_at", type_=legs_table.c.starts_at.type),
)
_PUT_BACK = update(legs_table).where(*_OURS).values(
    dial_claimed_at=None, dial_claimed_by=None, starts_at=bindparam("v_at", type_=legs_table.c.starts_at.type),
)
_STILL_OURS = select(legs_table.c.id).where(
    legs_table.c.id.in_(bindparam("legs", expanding=True)),
    legs_table.c.dial_claimed_by == bindparam("by"), *_UNDIALED,
)
_EXPECTED = (
    update(legs_table)
    .where(legs_table.c.id == bindparam("w_id"), legs_table.c.status == LegStatus.PENDING.value)
    .values(starts_at=bindparam("v_at", type_=legs_table.c.starts_at.type))
)


async def pace_legs(conn: AsyncConnection, slots: dict[str, datetime], engine: str) -> None:
    """Date these claimed legs' claims and expected starts at their slots."""
    if slots:
        await conn.execute(_PACE, [{"w_id": leg_id, "w_by": engine, "v_at": at} for leg_id, at in slots.items()])


async def still_ours(conn: AsyncConnection, leg_ids: list[str], engine: str) -> set[str]:
    """Of these legs, those still claimed by `engine` and undialed (not ended meanwhile: a cancel)."""
    if not leg_ids:
        return set()
    return set((await conn.execute(_STILL_OURS, {"legs": sorted(leg_ids), "by": engine})).scalars())


async def put_back(conn: AsyncConnection, leg_id: str, engine: str, at: datetime) -> bool:
    """Give up our claim on an undialed leg: any engine's recovery dials it from `at` on."""
    return (await conn.execute(_PUT_BACK, {"w_id": leg_id, "w_by": engine, "v_at": at})).rowcount == 1


async def expect_start(conn: AsyncConnection, starts: dict[str, datetime]) -> None:
    """The provider said when it will place these calls (its queue); a report that came first is kept."""
    if starts:
        await conn.execute(_EXPECTED, [{"w_id": leg_id, "v_at": at} for leg_id, at in starts.items()])


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


_MANAGER_LEGS = select(func.count()).select_from(legs_table).where(
    legs_table.c.lead_id == bindparam("lead_id"),
    legs_table.c.role == LegRole.MANAGER.value,
    legs_table.c.step.like(bindparam("attempt")),
)


async def manager_step(conn: AsyncConnection | AsyncSession, lead: LeadRow | Lead) -> int:
    """How many managers the lead's current attempt has rung so far (the live stream's `step`)."""
    params = {"lead_id": lead.id, "attempt": f"a{lead.attempt}:%"}
    return int((await conn.execute(_MANAGER_LEGS, params)).scalar_one())


async def leads_before(conn: AsyncConnection, lead: LeadRow) -> int:
    """How many call requests the site had before this one (round-robin rotation)."""
    params = {"site_id": lead.site_id, "created_at": lead.created_at}
    return int((await conn.execute(_LEADS_BEFORE, params)).scalar_one())


_QUEUE = (
    select(leads.c.id, leads.c.attempt)
    .where(leads.c.site_id == bindparam("site_id"), leads.c.status == LeadStatus.QUEUED.value)
    .order_by(leads.c.created_at, leads.c.id)
    .limit(bindparam("limit"))
)
_TRIED = select(legs_table.c.lead_id, legs_table.c.manager_id, legs_table.c.step).where(
    legs_table.c.lead_id.in_(bindparam("ids", expanding=True)), legs_table.c.manager_id.is_not(None)
)
_SITE_MANAGERS = select(*_MANAGER_COLUMNS).where(managers_table.c.site_id == bindparam("site_id"))
_FREE_MANAGER = (
    select(managers_table.c.id)
    .where(managers_table.c.site_id == leads.c.site_id, managers_table.c.active.is_(True),
           managers_table.c.busy_lead_id.is_(None))
    .correlate(leads)
    .exists()
)
_SITES_WAITING = select(leads.c.site_id).where(leads.c.status == LeadStatus.QUEUED.value, _FREE_MANAGER).distinct()


async def queue(conn: AsyncConnection, site_id: int, limit: int) -> list[Waiting]:
    """The site's queued leads, longest-waiting first (at most `limit`), each with the managers its
    current attempt has rung. Read without locks: what to wake, not what to decide."""
    rows = (await conn.execute(_QUEUE, {"site_id": site_id, "limit": limit})).all()
    if not rows:
        return []
    attempts = {row.id: row.attempt for row in rows}
    tried: dict[str, set[int]] = {}
    for leg in await conn.execute(_TRIED, {"ids": list(attempts)}):
        if attempt_of(leg.step) == attempts[leg.lead_id]:
            tried.setdefault(leg.lead_id, set()).add(leg.manager_id)
    return [Waiting(row.id, frozenset(tried.get(row.id, ()))) for row in rows]


async def site_managers(conn: AsyncConnection, site_id: int) -> list[ManagerRow]:
    """The site's managers as they are now, unlocked."""
    return [ManagerRow(row) for row in await conn.execute(_SITE_MANAGERS, {"site_id": site_id})]


async def sites_waiting(conn: AsyncConnection) -> set[int]:
    """Sites with a queued lead and an active manager held by nobody: the safety poll's question (it
    writes nothing; the queue's own wake-ups are the event-driven path)."""
    return set((await conn.execute(_SITES_WAITING)).scalars())


# provider reports held for later ---------------------------------------------------------------------

_HELD_DUE = (
    select(held_table.c.id, held_table.c.lead_id, held_table.c.leg_id, held_table.c.event, held_table.c.tries)
    .where(held_table.c.next_try_at <= bindparam("now", type_=held_table.c.next_try_at.type))
    .order_by(held_table.c.id)
    .limit(bindparam("limit"))
)
_TAKE_HELD = delete(held_table).where(held_table.c.id.in_(bindparam("ids", expanding=True))).returning(held_table.c.id)
_TAKE_HELD_OF = (
    delete(held_table)
    .where(or_(held_table.c.id.in_(bindparam("ids", expanding=True)),
               held_table.c.lead_id.in_(bindparam("leads", expanding=True)),
               held_table.c.leg_id.in_(bindparam("legs", expanding=True))))
    .returning(held_table.c.id, held_table.c.lead_id, held_table.c.leg_id, held_table.c.event)
)
_HELD_AGAIN = (
    update(held_table)
    .where(held_table.c.id == bindparam("w_id"))
    .values(tries=held_table.c.tries + 1, next_try_at=bindparam("v_next", type_=held_table.c.next_try_at.type),
            reason=bindparam("v_reason"), lead_id=func.coalesce(held_table.c.lead_id, bindparam("v_lead")))
)
_HELD_COUNT = select(func.count()).select_from(held_table)


async def hold(conn: AsyncConnection, lead_id: str | None, event: LegEvent, reason: str, now: datetime,
               next_try: datetime) -> None:
    await conn.execute(insert(held_table).values(
        lead_id=lead_id, leg_id=event.leg_id, event=event_codec.encode(event), reason=reason, held_at=now,
        tries=0, next_try_at=next_try,
    ))


async def held_due(conn: AsyncConnection, now: datetime, limit: int) -> list[Any]:
    """Held reports whose next try has come, oldest first: (id, lead_id, leg_id, event, tries)."""
    return list((await conn.execute(_HELD_DUE, {"now": now, "limit": limit})).all())


async def take_held(conn: AsyncConnection, held_ids: list[int]) -> set[int]:
    """Delete these held reports in the step that applies them; returns those still there (the others
    another engine applied already)."""
    if not held_ids:
        return set()
    return set((await conn.execute(_TAKE_HELD, {"ids": held_ids})).scalars())


async def take_held_of(conn: AsyncConnection, held_ids: list[int], legs_of: dict[str, list[str]]) -> list[Any]:
    """Delete, in the step that applies them, the held reports `held_ids` and every report held for these
    leads (`legs_of`: each lead's legs; a report held before its lead was known names only its leg).
    Returns them oldest first: (id, lead_id, leg_id, event), `lead_id` filled in from the leg."""
    lead_of_leg = {leg_id: lead_id for lead_id, legs in legs_of.items() for leg_id in legs}
    rows = (await conn.execute(_TAKE_HELD_OF, {
        "ids": held_ids, "leads": sorted(legs_of), "legs": sorted(lead_of_leg),
    })).all()
    return sorted(
        ((row.id, row.lead_id or lead_of_leg.get(row.leg_id), row.leg_id, row.event) for row in rows),
        key=lambda row: row[0],
    )


async def held_again(conn: AsyncConnection, held_id: int, lead_id: str | None, next_try: datetime,
                     reason: str) -> None:
    await conn.execute(_HELD_AGAIN, {"w_id": held_id, "v_next": next_try, "v_reason": reason, "v_lead": lead_id})


async def held_count(conn: AsyncConnection) -> int:
    return int((await conn.execute(_HELD_COUNT)).scalar_one())
