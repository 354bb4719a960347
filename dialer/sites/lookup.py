"""Finding a site by its public key, and its active managers in hunt order (ORM objects, for the web side)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import NotFound
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
