"""What a request may see: the user's sites, the site picked in the page, and the time zone to show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from starlette.exceptions import HTTPException
from starlette.requests import Request

from dialer.accounts.users import visible_sites
from dialer.db.models import Lead, Site
from dialer.reports.filters import LeadFilter
from server.dashboard.inputs import a_day
from server.dashboard.session import Ctx, runtime


@dataclass
class Scope:
    sites: list[Site]
    site: Site | None  # the site picked in the page, if any
    zone: str

    @property
    def site_ids(self) -> frozenset[int]:
        return frozenset(s.id for s in self.sites)

    def filter(self, **fields: object) -> LeadFilter:
        return LeadFilter(site_ids=self.site_ids, site_id=self.site.id if self.site else None, **fields)  # type: ignore[arg-type]


async def scope(request: Request, ctx: Ctx) -> Scope:
    assert ctx.access is not None
    async with runtime(request).sessions() as session:
        sites = await visible_sites(session, ctx.access)
    picked = request.query_params.get("site", "")
    site = next((s for s in sites if str(s.id) == picked), None)
    zone = site.timezone if site else (sites[0].timezone if len({s.timezone for s in sites}) == 1 else "UTC")
    return Scope(sites, site, zone)


async def visible_lead(request: Request, ctx: Ctx, lead_id: str) -> Lead:
    """The lead, if this user may see it; the same 404 whether it does not exist or is someone else's."""
    assert ctx.access is not None
    async with runtime(request).sessions() as session:
        lead = await session.get(Lead, lead_id)
    if lead is None or not ctx.access.may_see(lead.site_id):
        raise HTTPException(404, "No such lead.")
    return lead


def parse_day(raw: str | None, name: str) -> date | None:
    return a_day(raw, name)
