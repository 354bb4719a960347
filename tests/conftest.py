"""Shared fixtures: a real database (SQLite file and the PostgreSQL on 127.0.0.1), migrated with Alembic,
and a "world" of manual clock, simulated telephone network and engine that a test drives."""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dialer import db
from dialer.broadcast.memory import MemoryBroadcast
from dialer.clock import ManualClock
from dialer.config import Settings
from dialer.core.abuse_rules import UNGUARDED
from dialer.core.machine import Policy
from dialer.db.models import Base, Lead, Site
from dialer.intake.accept import CallbackRequest, accept
from dialer.runtime import Runtime
from dialer.sites.admin import add_manager, add_site
from dialer.sites.lookup import active_managers
from dialer.telephony.simulator import Behaviour, SimulatedProvider

PG_URL = os.environ.get("RINGBACK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TABLES = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
MANAGER_PHONES = ("+12025550101", "+12025550102", "+12025550103")


def _reset_postgres() -> None:
    async def go() -> None:
        engine = create_async_engine(PG_URL)
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {TABLES}, alembic_version CASCADE"))
        await engine.dispose()

    asyncio.run(go())


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "ringback.db"
    url = f"sqlite+aiosqlite:///{path}"
    db.migrate(url)
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    _reset_postgres()
    db.migrate(PG_URL)
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    url = request.getfixturevalue(f"{request.param}_url")
    _truncate(url)
    yield url


async def truncate(url: str) -> None:
    engine = db.create_engine(url)
    await db.empty_tables(engine)
    await engine.dispose()


def _truncate(url: str) -> None:
    asyncio.run(truncate(url))


@dataclass
class World:
    runtime: Runtime
    clock: ManualClock
    sim: SimulatedProvider
    site: Site

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.runtime.engine

    async def submit(self, phone: str = "+48501234567", **fields: object) -> Lead:
        async with self.runtime.sessions() as session, session.begin():
            fields.setdefault("timezone", "Europe/Warsaw")
            req = CallbackRequest(site=self.site.key, phone=phone, **fields)  # type: ignore[arg-type]
            lead, _ = await accept(session, req, self.clock.now())
        self.engine.nudge()
        return lead

    async def lead(self, lead_id: str) -> Lead:
        async with self.runtime.sessions() as session:
            found = await session.get(Lead, lead_id)
            assert found is not None
            return found

    async def until_status(self, lead_id: str, *statuses: str, limit: float = 3600) -> Lead:
        async def done() -> bool:
            return (await self.lead(lead_id)).status in statuses

        await self.clock.run_until(done, limit=limit)
        return await self.lead(lead_id)


def script_hunt(sim: SimulatedProvider) -> None:
    """The full hunt: first manager never answers, second's voicemail picks up, third presses 1."""
    sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    sim.script(MANAGER_PHONES[1], Behaviour.voicemail_after(6.0))
    sim.script(MANAGER_PHONES[2], Behaviour.presses_1(after=4.0))


def relaxed_abuse() -> dict[str, Any]:
    """Settings for the shared test site: abuse protection out of the way of tests about other things
    (they post straight to the API, many times, from one address). The abuse tests pass
    `site_settings={}` to get the defaults every new site has."""
    return {"abuse": copy.deepcopy(UNGUARDED)}


async def make_world(
    url: str,
    *,
    managers: int = 3,
    start: datetime | None = None,
    policy: Policy | None = None,
    key: str = "shop",
    site_settings: dict[str, Any] | None = None,
) -> World:
    clock = ManualClock(start)
    sim = SimulatedProvider(clock, seed=7)
    settings = Settings(database_url=url, demo=True)
    runtime = Runtime.build(
        settings, clock=clock, provider=sim, broadcast=MemoryBroadcast(), policy=policy, poll_interval=None
    )
    async with runtime.sessions() as session, session.begin():
        site = await add_site(session, name="Shop", key=key, timezone="Europe/Warsaw", country="PL",
                              any_country=True, now=clock.now())
        site.settings = relaxed_abuse() if site_settings is None else site_settings
        for i in range(managers):
            await add_manager(session, site=site, name=f"M{i + 1}", phone=MANAGER_PHONES[i])
        if key != "shop":  # a second world on the same database: its managers are other people
            for manager in await active_managers(session, site.id):
                manager.phone = manager.phone[:-3] + "9" + manager.phone[-2:]
    return World(runtime, clock, sim, site)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    w = await make_world(database_url)
    await w.engine.start()
    yield w
    await w.runtime.close()
