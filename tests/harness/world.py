"""A world a test drives: a runtime (database, manual clock, simulated telephone network, engine) and a
site with its managers, built one way for every kind of test."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dialer.broadcast.memory import Broadcast, MemoryBroadcast
from dialer.clock import Clock, ManualClock
from dialer.config import Settings
from dialer.core.abuse_rules import UNGUARDED
from dialer.core.machine import Policy
from dialer.db.models import Lead, Site
from dialer.engine import Engine
from dialer.intake.accept import CallbackRequest, accept
from dialer.runtime import Runtime
from dialer.sites.admin import add_manager, add_site
from dialer.sites.lookup import active_managers
from dialer.telephony.base import Provider
from dialer.telephony.simulator import Behaviour, SimulatedProvider

MANAGER_PHONES = ("+12025550101", "+12025550102", "+12025550103")

# How a world's site comes to be: given a session and the clock's now, make the site (and its managers).
Seed = Callable[[AsyncSession, datetime], Awaitable[Site]]


def relaxed_abuse() -> dict[str, Any]:
    """Settings for the shared test site: abuse protection out of the way of tests about other things
    (they post straight to the API, many times, from one address). The abuse tests pass
    `site_settings={}` to get the defaults every new site has."""
    return {"abuse": copy.deepcopy(UNGUARDED)}


def script_hunt(sim: SimulatedProvider) -> None:
    """The full hunt: first manager never answers, second's voicemail picks up, third presses 1."""
    sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    sim.script(MANAGER_PHONES[1], Behaviour.voicemail_after(6.0))
    sim.script(MANAGER_PHONES[2], Behaviour.presses_1(after=4.0))


def build_runtime(
    database_url: str,
    *,
    clock: Clock | None = None,
    provider: Provider | None = None,
    broadcast: Broadcast | None = None,
    policy: Policy | None = None,
    poll_interval: float | None = None,
    **settings: Any,
) -> Runtime:
    """A runtime as a test wants it: demo settings (plus `settings`), an in-memory broadcast, and no
    polling — the engine is woken by nudges and by its clock's timers, so nothing happens on its own."""
    return Runtime.build(
        Settings(database_url=database_url, **{"demo": True, **settings}), clock=clock, provider=provider,
        broadcast=broadcast or MemoryBroadcast(), policy=policy, poll_interval=poll_interval,
    )


async def add_shop(
    session: AsyncSession,
    *,
    now: datetime,
    managers: int = 3,
    key: str = "shop",
    settings: dict[str, Any] | None = None,
    caller_id: str | None = None,
    **columns: Any,
) -> Site:
    """The test shop (Warsaw, Poland, any country may ask) with `managers` managers at MANAGER_PHONES;
    `settings` default to `relaxed_abuse()`, `columns` set more of the site (recording, origins…)."""
    site = await add_site(session, name="Shop", key=key, timezone="Europe/Warsaw", country="PL",
                          caller_id=caller_id, any_country=True, now=now)
    site.settings = relaxed_abuse() if settings is None else settings
    for name, value in columns.items():
        setattr(site, name, value)
    for i in range(managers):
        await add_manager(session, site=site, name=f"M{i + 1}", phone=MANAGER_PHONES[i])
    if key != "shop":  # a second shop on the same database: its managers are other people
        for manager in await active_managers(session, site.id):
            manager.phone = manager.phone[:-3] + "9" + manager.phone[-2:]
    return site


@dataclass
class World:
    runtime: Runtime
    clock: ManualClock
    sim: SimulatedProvider
    site: Site

    @property
    def engine(self) -> Engine:
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
        """Run the clock's timers until the lead reaches one of `statuses` (at most `limit` seconds)."""

        async def done() -> bool:
            return (await self.lead(lead_id)).status in statuses

        await self.clock.run_until(done, limit=limit)
        return await self.lead(lead_id)


async def make_world(
    url: str,
    *,
    managers: int = 3,
    start: datetime | None = None,
    policy: Policy | None = None,
    key: str = "shop",
    site_settings: dict[str, Any] | None = None,
    seed: Seed | None = None,
    poll_interval: float | None = None,
) -> World:
    """A world on the database at `url`: a manual clock at `start`, the simulator (seed 7), an engine not
    yet started, and the shop (`managers`, `key`, `site_settings` as in `add_shop`) — or whatever site
    `seed` makes instead (e.g. `server.demo.seed`)."""
    clock = ManualClock(start)
    sim = SimulatedProvider(clock, seed=7)
    runtime = build_runtime(url, clock=clock, provider=sim, policy=policy, poll_interval=poll_interval)
    async with runtime.sessions() as session, session.begin():
        if seed is not None:
            site = await seed(session, clock.now())
        else:
            site = await add_shop(session, now=clock.now(), managers=managers, key=key, settings=site_settings)
    return World(runtime, clock, sim, site)
