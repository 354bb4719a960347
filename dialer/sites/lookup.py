"""Finding a site by its public key, its active managers in hunt order, and one manager as an owner names
them (ORM objects, for the web side and the command line)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import InvalidField, NotFound
from dialer.core.phones import normalise
from dialer.db.models import Manager, Site


async def site_by_key(session: AsyncSession, key: str) -> Site:
    # A key that could never exist is not worth a query (and NUL or broken UTF-16 would upset PostgreSQL).
    found = None
    if len(key) <= 64 and "\x00" not in key and key.encode("utf-8", "replace").decode() == key:
        found = (await session.execute(select(Site).where(Site.key == key))).scalar_one_or_none()
    if found is None:
        raise NotFound("No site with this key. Check the data-site attribute of the widget's tag.", "site")
    return found


async def active_managers(session: AsyncSession, site_id: int) -> list[Manager]:
    """The site's active managers in hunt order."""
    query = (
        select(Manager)
        .where(Manager.site_id == site_id, Manager.active.is_(True))
        .order_by(Manager.position, Manager.id)
    )
    return list((await session.execute(query)).scalars())


async def find_manager(session: AsyncSession, site: Site, who: str, *, field: str = "manager") -> Manager:
    """The site's manager that `who` names: their id (as `ringback manager add` prints it), their phone
    number in any form, or their name (any case; it must be the only manager of that name)."""
    text = who.strip()
    managers = list((await session.execute(
        select(Manager).where(Manager.site_id == site.id).order_by(Manager.position, Manager.id))).scalars())
    found = [m for m in managers if str(m.id) == text]
    if not found:
        try:
            number = normalise(text, site.country)
        except InvalidField:
            number = None
        found = [m for m in managers if m.phone == number] or [m for m in managers if m.name.lower() == text.lower()]
    if len(found) > 1:
        raise InvalidField(field, f"{len(found)} managers of {site.name} are called {text!r}: give the id or "
                                  "phone number of the one you mean.", "ambiguous")
    if not found:
        known = ", ".join(f"{m.id} {m.name} {m.phone}" for m in managers) or "none yet"
        raise InvalidField(field, f"{site.name} has no manager {text!r} (its managers: {known}).", "not_found")
    return found[0]
