"""`ringback demo` seeds a site a newcomer can try at any hour, and running it again reuses it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from dialer.core import windows
from dialer.db.models import Manager, Site
from dialer.sites.config import from_row
from server import demo
from tests.conftest import make_world


async def test_the_demo_site_is_callable_at_night_and_seeded_once(database_url: str) -> None:
    world = await make_world(database_url)
    night = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    async with world.runtime.sessions() as session, session.begin():
        site = await demo.seed(session, night)
        again = await demo.seed(session, night)
        assert again.id == site.id
        managers = list((await session.execute(select(Manager).where(Manager.site_id == site.id))).scalars())
        assert [m.name.split()[0] for m in managers] == ["Alex", "Blake", "Casey"]
        assert (await session.execute(select(func.count()).select_from(Site).where(Site.key == "demo"))).scalar() == 1
    assert windows.allowed_at(night, from_row(site, managers), managers, "Europe/Warsaw", 20) == night
    await world.runtime.close()
