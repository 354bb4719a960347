"""The process's copy of each site's config: a change made in this process is seen at once, one made
elsewhere within the cache's lifetime (on the process's clock), a refused request does not spoil the
copy, and the engine and the widget read the same copy."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import text

from dialer import db
from dialer.clock import ManualClock
from dialer.core.errors import NotFound
from dialer.db.models import Site
from dialer.sites.cache import SiteCache
from server.app import create_app
from tests.conftest import make_world


async def test_a_change_made_in_this_process_is_seen_at_once(database_url: str) -> None:
    world = await make_world(database_url)
    cache = SiteCache(ManualClock(), ttl=60)
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
    clock = ManualClock()
    cache = SiteCache(clock, ttl=5)
    async with world.runtime.sessions() as session:
        await cache.get(session, "shop")
    other = db.create_engine(database_url)  # another process: no session of this one is involved
    async with other.begin() as conn:
        await conn.execute(text("UPDATE sites SET country = 'DE' WHERE key = 'shop'"))
    await other.dispose()
    async with world.runtime.sessions() as session:
        assert (await cache.get(session, "shop"))[0].country == "PL"
        await clock.advance(4.9)
        assert (await cache.get(session, "shop"))[0].country == "PL"
        await clock.advance(0.2)
        assert (await cache.get(session, "shop"))[0].country == "DE"
    await world.runtime.close()


async def test_a_refused_request_leaves_the_copy_readable(database_url: str) -> None:
    world = await make_world(database_url)
    cache = SiteCache(ManualClock(), ttl=60)
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


async def test_the_engine_and_the_widget_read_the_same_copy(database_url: str) -> None:
    world = await make_world(database_url)
    rt, site_id = world.runtime, world.site.id
    assert create_app(runtime=rt).state.sites is rt.sites is world.engine.site_cache
    async with rt.sessions() as session:
        widget, _ = await rt.sites.get(session, "shop")
    async with rt.database.connect() as conn:
        engine = (await world.engine.sites(conn, {site_id}))[site_id]
    assert engine is widget and engine.calling_window == (time(8), time(22))
    other = db.create_engine(database_url)  # another process changes the calling window
    async with other.begin() as conn:
        await conn.execute(text("""UPDATE sites SET settings = '{"calling_window": ["09:00", "17:00"]}'"""))
    await other.dispose()
    await world.clock.advance(4)
    async with rt.database.connect() as conn:
        assert (await world.engine.sites(conn, {site_id}))[site_id] is widget  # neither side has read it yet
    await world.clock.advance(1.1)
    async with rt.database.connect() as conn:
        engine = (await world.engine.sites(conn, {site_id}))[site_id]  # the engine reads it first this time
    async with rt.sessions() as session:
        widget, managers = await rt.sites.get(session, "shop")
    assert widget is engine and widget.calling_window == (time(9), time(17)) and len(managers) == 3
    await world.runtime.close()
