"""Provider reports held for later (`held_events`) in the database, no rules (`held.py` asks): kept,
read when due, taken by the step that applies them, tried again, counted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.core import event_codec
from dialer.core.events import LegEvent
from dialer.db.models import HeldEvent, table_of

held_table = table_of(HeldEvent)

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
