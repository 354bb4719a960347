"""Daily caps on calls and on spend, per site, counted in the site's own day (its time zone).

When a cap is reached a new call request is not refused (the visitor did nothing wrong): it is kept as a
message for the managers, or scheduled for the next morning, as the site's settings say. The owner is
told twice: a line in the lead's timeline, and a site notice (one per cap per day) for the dashboard.
The rules are in `dialer/core/caps.py`; here are the counting and the writing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.abuse_rules import AbuseRules
from dialer.core.caps import Day, Reached, applies, calls_reached, local_day, over_cap, spend_reached
from dialer.core.site_config import SiteConfig
from dialer.db.models import CallLeg, Lead, LeadEvent, SiteNotice


def site_day(site: SiteConfig, now: datetime) -> Day:
    return local_day(site.timezone, now)


async def calls_today(session: AsyncSession, site: SiteConfig, day: Day, *, excluding: str | None = None) -> int:
    query = select(func.count()).select_from(Lead).where(
        Lead.site_id == site.id, Lead.kind == "call", Lead.created_at >= day.start, Lead.created_at < day.end
    )
    if excluding is not None:
        query = query.where(Lead.id != excluding)
    return int((await session.execute(query)).scalar_one())


async def spend_today(session: AsyncSession, site: SiteConfig, day: Day) -> Decimal:
    """What the site's calls placed today cost (Twilio reports prices as negative amounts)."""
    query = (
        select(func.coalesce(func.sum(func.abs(CallLeg.price)), 0))
        .join(Lead, Lead.id == CallLeg.lead_id)
        .where(Lead.site_id == site.id, CallLeg.created_at >= day.start, CallLeg.created_at < day.end)
    )
    return Decimal(str((await session.execute(query)).scalar_one()))


async def apply(session: AsyncSession, site: SiteConfig, lead: Lead, now: datetime) -> str | None:
    """Turn a freshly accepted call lead into a message or a next-day call when a cap is reached.

    Returns what happened (for the timeline), or None when the lead is left as it was."""
    day = site_day(site, now)
    if not applies(lead.kind, lead.scheduled_for, day):
        return None
    rules = site.abuse
    reached = await _reached(session, site, lead, day, rules)
    if reached is None:
        return None
    over = over_cap(reached, rules.over_cap, rules.next_day_at, day, site.timezone, now)
    lead.kind, lead.status, lead.scheduled_for, lead.wake_at = over.kind, over.status, over.scheduled_for, over.wake_at
    lead.updated_at = now
    session.add(LeadEvent(lead_id=lead.id, at=now, kind="cap", status=lead.status, detail=over.detail))
    await notify_owner(session, site, reached.kind, day, now, over.detail)
    await session.flush()
    return over.detail


async def _reached(
    session: AsyncSession, site: SiteConfig, lead: Lead, day: Day, rules: AbuseRules
) -> Reached | None:
    """The first cap reached; the spend is counted only when the calls are not over theirs."""
    if rules.daily_calls is not None:
        reached = calls_reached(rules.daily_calls, await calls_today(session, site, day, excluding=lead.id))
        if reached is not None:
            return reached
    if rules.daily_spend is not None:
        return spend_reached(rules.daily_spend, await spend_today(session, site, day), site.currency)
    return None


async def notify_owner(
    session: AsyncSession, site: SiteConfig, kind: str, day: Day, now: datetime, detail: str
) -> None:
    """One notice per cap per day, however many requests hit it (and whichever process sees it first)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    query = insert(SiteNotice).values(site_id=site.id, kind=kind, day=day.label, at=now, detail=detail)
    await session.execute(query.on_conflict_do_nothing(index_elements=["site_id", "kind", "day"]))


async def notices(session: AsyncSession, site_id: int, *, unseen_only: bool = True) -> list[SiteNotice]:
    """The site's notices, newest first, for the dashboard."""
    query = select(SiteNotice).where(SiteNotice.site_id == site_id).order_by(SiteNotice.at.desc())
    if unseen_only:
        query = query.where(SiteNotice.seen_at.is_(None))
    return list((await session.execute(query)).scalars())


async def unseen_notices(session: AsyncSession, site_ids: Collection[int], *, limit: int) -> list[SiteNotice]:
    """These sites' notices nobody has dismissed, newest first, at most `limit` (the dashboard's owners)."""
    query = (
        select(SiteNotice)
        .where(SiteNotice.site_id.in_(sorted(site_ids)), SiteNotice.seen_at.is_(None))
        .order_by(SiteNotice.at.desc(), SiteNotice.id.desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def mark_seen(session: AsyncSession, site_id: int, notice_id: int, now: datetime) -> bool:
    """The owner has read a notice (the dashboard stops showing it). False if it is not this site's."""
    query = (
        update(SiteNotice)
        .where(SiteNotice.id == notice_id, SiteNotice.site_id == site_id, SiteNotice.seen_at.is_(None))
        .values(seen_at=now)
    )
    result = cast("CursorResult[Any]", await session.execute(query))
    return result.rowcount == 1
