"""A step's database operations: reads, locks and writes, no rules. The engine asks; it never writes
SQL itself.

The engine steps many leads in one transaction (see `dialer/engine/inbox.py`): it locks them with their legs
and their sites' managers in two queries, the rules (`dialer/core/apply.py`) change the records in memory
(`dialer/core/records.py`), then `flush` writes back only the columns that changed and the step's
timeline, a few statements for the whole batch. Statements are built once (SQLAlchemy Core).

Here: the step's locks, reads and writes, and the queue's reads. The legs' dial claims and pacing are in
`store_claims.py`, the provider reports held for later in `store_held.py`.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Update, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dialer.core.queue_order import Waiting
from dialer.core.records import LeadRow, LegRow, ManagerRow, attempt_of
from dialer.core.site_config import SiteConfig
from dialer.core.states import LeadStatus, LegRole
from dialer.core.step import Step
from dialer.db.models import CallLeg, Lead, LeadEvent, Manager, Site, table_of

leads = leads_table = table_of(Lead)
legs_table = table_of(CallLeg)
managers_table = table_of(Manager)
sites_table = table_of(Site)
events_table = table_of(LeadEvent)

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
