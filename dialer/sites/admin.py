"""Setting up sites and their managers (used by the command line and the dashboard)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import InvalidField
from dialer.core.phones import normalise
from dialer.db.models import Manager, Site
from dialer.intake.accept import valid_timezone


def new_site_key() -> str:
    return secrets.token_urlsafe(12)


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
    if len(country) != 2 or not country.isalpha():
        raise InvalidField("country", "Use a two-letter country code such as US, GB or PL.", "invalid_country")
    key = key or new_site_key()
    if (await session.execute(select(Site.id).where(Site.key == key))).first():
        raise InvalidField("key", f"A site with key '{key}' exists already.", "duplicate")
    site = Site(
        key=key,
        name=name.strip(),
        timezone=timezone,
        country=country.upper(),
        caller_id=normalise(caller_id, country, field="caller_id") if caller_id else None,
        origins=[o.rstrip("/") for o in origins or []],
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
