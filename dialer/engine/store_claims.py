"""The legs' dial claims in the database, no rules (`dialing.py` asks): each leg is dialed by the
engine that claims it, recorded with its call id, looked for again when its dial was never confirmed,
and dated at its slot of the account's call pacer (`pacing.py`).

A leg is dialed by the engine that claims it: a conditional UPDATE, committed before the provider is
asked. The condition is on the leg's own row, so PostgreSQL re-checks it on the row's newest version
after waiting for another writer (a SELECT ... FOR UPDATE OF leads re-checks only the lead), and SQLite
has one writer at a time: at any isolation, of two claims of one leg one updates the row, the other none.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.core.records import LegRow
from dialer.core.states import TERMINAL, LegStatus
from dialer.db.models import CallLeg, Lead, table_of

leads = table_of(Lead)
legs_table = table_of(CallLeg)
_LEG_COLUMNS = [legs_table.c[name] for name in LegRow.COLUMNS]


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

