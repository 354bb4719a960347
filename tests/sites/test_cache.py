"""The widget's copy of a site: a change made in this process is seen at once, one made elsewhere within
the cache's lifetime, and a refused request does not spoil the copy."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dialer import db
from dialer.core.errors import NotFound
from dialer.db.models import Site
from dialer.sites.cache import SiteCache
from tests.conftest import make_world


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_change_made_in_this_process_is_seen_at_once(database_url: str) -> None:
    world = await make_world(database_url)
    cache = SiteCache(ttl=60, clock=Ticks())
    async with world.runtime.sessions() as session:
        site, managers = await cache.get(session, "shop")
    assert site.country == "PL" and len(managers) == 3
    async with world.runtime.sessions() as session, session.begin():
        found = await session.get(Site, site.id)
        assert found is not None
        found.country = "DE"
    async with world.runtime.sessions() as session, session.begin():
        await session.execute(text("UPDATE managers SET active = false WHERE phone LIKE '%0101'"))
    async with world.runtime.sessions() as session:
        site, managers = await cache.get(session, "shop")
    assert site.country == "DE" and len(managers) == 2
    await world.runtime.close()


async def test_a_change_made_by_another_process_is_seen_once_the_copy_expires(database_url: str) -> None:
    world = await make_world(database_url)
    ticks = Ticks()
    cache = SiteCache(ttl=5, clock=ticks)
    async with world.runtime.sessions() as session:
        await cache.get(session, "shop")
    other = db.create_engine(database_url)  # another process: no session of this one is involved
    async with other.begin() as conn:
        await conn.execute(text("UPDATE sites SET country = 'DE' WHERE key = 'shop'"))
    await other.dispose()
    async with world.runtime.sessions() as session:
        assert (await cache.get(session, "shop"))[0].country == "PL"
        ticks.now = 5.1
        assert (await cache.get(session, "shop"))[0].country == "DE"
    await world.runtime.close()


async def test_a_refused_request_leaves_the_copy_readable(database_url: str) -> None:
    world = await make_world(database_url)
    cache = SiteCache(ttl=60, clock=Ticks())
    with pytest.raises(RuntimeError):
        async with world.runtime.sessions() as session, session.begin():
            await cache.get(session, "shop")
            raise RuntimeError("refused")  # the transaction rolls back
    async with world.runtime.sessions() as session:
        site, managers = await cache.get(session, "shop")
    assert site.name == "Shop" and [m.name for m in managers] == ["M1", "M2", "M3"]
    with pytest.raises(NotFound):
        async with world.runtime.sessions() as session:
            await cache.get(session, "no-such-site")
    await world.runtime.close()
