"""Setting up sites and their managers (used by the command line and the dashboard)."""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit

import phonenumbers
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import InvalidField
from dialer.core.phones import normalise
from dialer.db.models import AuditLog, CallLeg, Lead, LeadEvent, Manager, Site, SiteNotice, UserSite
from dialer.intake.accept import valid_timezone


def new_site_key() -> str:
    return secrets.token_urlsafe(12)


def checked_country(code: str, *, field: str = "country") -> str:
    """A region phonenumbers knows ("pl" → "PL"), or InvalidField naming `field`."""
    region = code.strip().upper()
    if len(region) != 2 or not region.isalpha() or phonenumbers.country_code_for_region(region) == 0:
        raise InvalidField(field, f"'{code[:20]}' is not a country: use a two-letter code such as US, GB or PL.",
                           "invalid_country")
    return region


def checked_origin(origin: str) -> str:
    """`https://shop.example` (scheme, host, optional port; no path), or InvalidField("origin")."""
    parts = urlsplit(origin.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
        raise InvalidField("origin", f"'{origin[:80]}' is not an origin: write it as https://shop.example "
                           "(the scheme and host of the site's pages, no path).", "invalid_origin")
    return f"{parts.scheme}://{parts.netloc}"


async def list_sites(session: AsyncSession) -> list[Site]:
    return list((await session.execute(select(Site).order_by(Site.id))).scalars())


async def count_leads(session: AsyncSession, site: Site) -> int:
    return int((await session.execute(select(func.count()).select_from(Lead).where(Lead.site_id == site.id)))
               .scalar_one())


async def remove_site(session: AsyncSession, site: Site) -> None:
    """Delete the site with everything that is its own: managers, call requests with their calls and
    timelines, notices and memberships (the audit log keeps its lines)."""
    leads = select(Lead.id).where(Lead.site_id == site.id)
    await session.execute(delete(CallLeg).where(CallLeg.lead_id.in_(leads)))
    await session.execute(delete(LeadEvent).where(LeadEvent.lead_id.in_(leads)))
    await session.execute(delete(Lead).where(Lead.site_id == site.id))
    await session.execute(delete(SiteNotice).where(SiteNotice.site_id == site.id))
    await session.execute(delete(UserSite).where(UserSite.site_id == site.id))
    await session.execute(update(AuditLog).where(AuditLog.site_id == site.id).values(site_id=None))
    await session.execute(delete(Manager).where(Manager.site_id == site.id))
    await session.delete(site)
    await session.flush()


def set_countries(site: Site, codes: list[str]) -> None:
    """The countries whose numbers the site calls: region codes, or ["any"] for any country."""
    settings = dict(site.settings or {})
    abuse = dict(settings.get("abuse") or {})
    settings.pop("countries", None)  # the older top-level key
    if [c.strip().lower() for c in codes] == ["any"]:
        site.any_country = True
        abuse.pop("countries", None)
    else:
        if not codes:
            raise InvalidField("country", "Name at least one country (e.g. PL DE), or 'any'.", "required")
        site.any_country = False
        abuse["countries"] = list(dict.fromkeys(checked_country(c) for c in codes))
    settings["abuse"] = abuse
    site.settings = settings


async def site_managers(session: AsyncSession, site: Site) -> list[Manager]:
    """Every manager of the site, active or not, in hunt order."""
    query = select(Manager).where(Manager.site_id == site.id).order_by(Manager.position, Manager.id)
    return list((await session.execute(query)).scalars())


async def add_site(
    session: AsyncSession,
    *,
    name: str,
    now: datetime,
    key: str | None = None,
    timezone: str = "UTC",
    country: str = "US",
    caller_id: str | None = None,
    origins: list[str] | None = None,
    any_country: bool = False,
) -> Site:
    if not name.strip():
        raise InvalidField("name", "A site needs a name.", "required")
    if not valid_timezone(timezone):
        raise InvalidField("timezone", f"'{timezone}' is not a known time zone name.", "invalid_timezone")
    country = checked_country(country)
    key = key or new_site_key()
    if (await session.execute(select(Site.id).where(Site.key == key))).first():
        raise InvalidField("key", f"A site with key '{key}' exists already.", "duplicate")
    site = Site(
        key=key,
        name=name.strip(),
        timezone=timezone,
        country=country.upper(),
        caller_id=normalise(caller_id, country, field="caller_id") if caller_id else None,
        origins=[checked_origin(o) for o in origins or []],
        any_country=any_country,
        settings={},
        created_at=now,
    )
    session.add(site)
    await session.flush()
    return site


async def add_manager(
    session: AsyncSession, *, site: Site, name: str, phone: str, position: int | None = None
) -> Manager:
    if not name.strip():
        raise InvalidField("name", "A manager needs a name.", "required")
    number = normalise(phone, site.country)
    if position is None:
        last = await session.execute(select(func.max(Manager.position)).where(Manager.site_id == site.id))
        position = (last.scalar_one_or_none() or 0) + 1
    manager = Manager(site_id=site.id, name=name.strip(), phone=number, position=position, active=True)
    session.add(manager)
    await session.flush()
    return manager
