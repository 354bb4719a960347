"""Loading a site's config from its row: the ORM object and the engine's Core row read alike, and a problem
in the stored settings is logged once per site and problem, not every time the site is loaded."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from dialer.db.models import Site
from dialer.sites import config as site_config
from dialer.sites.config import from_row, load_by_ids
from dialer.sites.lookup import active_managers
from tests.conftest import make_world


def _site(key: str, settings: dict[str, object]) -> Site:
    return Site(id=1, key=key, name=key, timezone="UTC", country="US", any_country=False,
                origins=[], settings=settings, consent_required=False)


def test_a_problem_is_logged_once_per_site(caplog: pytest.LogCaptureFixture) -> None:
    site_config._reported.clear()
    bad = {"slot_minutes": "thirty", "calling_window": "always"}
    with caplog.at_level(logging.WARNING, logger="ringback.sites"):
        for _ in range(3):
            assert from_row(_site("once", bad)).slot_minutes == 30
        from_row(_site("other", {"slot_minutes": "thirty"}))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert sum("site once: settings slot_minutes" in line for line in lines) == 1
    assert sum("site once: settings calling_window" in line for line in lines) == 1
    assert sum("site other: settings slot_minutes" in line for line in lines) == 1


async def test_the_orm_row_and_the_core_row_read_alike(database_url: str) -> None:
    world = await make_world(database_url, site_settings={"calling_window": ["07:00", "24:00"], "slot_minutes": 20})
    try:
        async with world.runtime.sessions() as session, session.begin():
            site = (await session.execute(select(Site).where(Site.key == "shop"))).scalar_one()
            managers = await active_managers(session, site.id)
            managers[0].working_hours = {"mon": [["09:00", "17:00"]]}
        async with world.runtime.sessions() as session:
            site = (await session.execute(select(Site).where(Site.key == "shop"))).scalar_one()
            orm = from_row(site, await active_managers(session, site.id))
        async with world.runtime.database.connect() as conn:
            core = (await load_by_ids(conn, {site.id, 999_999}))[site.id]
        for name in ("id", "key", "name", "timezone", "country", "currency", "routing", "origins", "calling_window",
                     "slot_minutes", "problems"):
            assert getattr(orm, name) == getattr(core, name), name
        assert orm.business_hours.days == core.business_hours.days
        assert {k: v.weekly.days if v.weekly else None for k, v in orm.manager_hours.items()} == \
            {k: v.weekly.days if v.weekly else None for k, v in core.manager_hours.items()}
        assert len(core.manager_hours) == 3 and any(v.weekly for v in core.manager_hours.values())
    finally:
        await world.runtime.close()
