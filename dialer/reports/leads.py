"""The leads list (newest first, each lead with what its calls cost), its filter menus, and where a lead's
number rings.

Costs are summed in SQL per page of leads (see `dialer.reports.money`), and a leg whose price is not
known yet is counted as pending, never as zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as phone_timezones
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import CallLeg, Lead, Site
from dialer.reports.filters import LeadFilter, campaign, source_label, where
from dialer.reports.money import money, summed_micros

# the list -------------------------------------------------------------------------------------------


@dataclass
class LeadRow:
    lead: Lead
    site_name: str
    cost: Decimal
    pending: int
    legs: int
    unit: str = ""  # the currency of its cost: the provider's price unit, else the site's currency


async def list_leads(
    session: AsyncSession, f: LeadFilter, *, page: int = 1, per_page: int = 50
) -> tuple[list[LeadRow], int]:
    """One page of leads, newest first, with each lead's cost; and how many leads match in all."""
    total = (await session.execute(where(select(func.count()).select_from(Lead), f))).scalar_one()
    query = where(select(Lead), f).order_by(Lead.created_at.desc(), Lead.id.desc())
    leads = list((await session.execute(query.limit(per_page).offset((page - 1) * per_page))).scalars())
    return await _with_costs(session, leads), int(total)


async def iter_leads(session: AsyncSession, f: LeadFilter, chunk: int = 1000) -> Iterable[LeadRow]:
    """Every matching lead, newest first (the CSV export): read in chunks, costed per chunk."""
    rows: list[LeadRow] = []
    query = where(select(Lead), f).order_by(Lead.created_at.desc(), Lead.id.desc())
    offset = 0
    while True:
        leads = list((await session.execute(query.limit(chunk).offset(offset))).scalars())
        rows.extend(await _with_costs(session, leads))
        if len(leads) < chunk:
            return rows
        offset += chunk


async def _with_costs(session: AsyncSession, leads: list[Lead]) -> list[LeadRow]:
    if not leads:
        return []
    ids = [lead.id for lead in leads]
    query = (
        select(
            CallLeg.lead_id,
            summed_micros(CallLeg.price),
            func.sum(case((CallLeg.price.is_(None), 1), else_=0)),
            func.count(),
            func.max(CallLeg.price_unit),
        )
        .where(CallLeg.lead_id.in_(ids))
        .group_by(CallLeg.lead_id)
    )
    found = {row[0]: row for row in await session.execute(query)}
    sites = {row[0]: (row[1], row[2]) for row in await session.execute(
        select(Site.id, Site.name, Site.currency).where(Site.id.in_({lead.site_id for lead in leads})))}
    rows = []
    for lead in leads:
        name, currency = sites.get(lead.site_id, ("", ""))
        got = found.get(lead.id)
        if got is None:
            rows.append(LeadRow(lead, name, Decimal("0.00000"), 0, 0, currency))
        else:
            rows.append(LeadRow(lead, name, money(got[1]), int(got[2] or 0), int(got[3]), got[4] or currency))
    return rows


async def site_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    rows = await session.execute(select(Site.id, Site.name).where(Site.id.in_(ids or {-1})))
    return {row[0]: row[1] for row in rows}


async def filter_choices(session: AsyncSession, f: LeadFilter, recent: int = 2000) -> tuple[list[str], list[str]]:
    """The sources and campaigns of the latest leads, for the filter menus (bounded work at any size)."""
    scope = LeadFilter(site_ids=f.site_ids, site_id=f.site_id)
    query = where(select(source_label(), campaign()), scope).order_by(Lead.created_at.desc()).limit(recent)
    rows = list(await session.execute(query))
    sources = {r[0] for r in rows if r[0]} | ({f.source} if f.source else set())
    campaigns = {r[1] for r in rows if r[1]} | ({f.campaign} if f.campaign else set())
    return sorted(sources), sorted(campaigns)


# a lead's page --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Whereabouts:
    """Where a number rings, read offline from the number itself."""

    region: str  # city or area if the number tells it, else the country
    country: str
    zone: str | None
    local_time: datetime | None


def whereabouts(phone: str, now: datetime) -> Whereabouts:
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return Whereabouts("unknown", "", None, None)
    country = geocoder.country_name_for_number(number, "en")
    region = geocoder.description_for_number(number, "en") or country or "unknown"
    zones = [z for z in phone_timezones.time_zones_for_number(number) if "/" in z]
    zone = zones[0] if len(zones) == 1 else None  # several zones: the number does not say which
    return Whereabouts(region, country, zone, now.astimezone(ZoneInfo(zone)) if zone else None)
