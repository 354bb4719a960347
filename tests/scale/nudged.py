"""Two runtimes on one database stand for two processes: a web process (no engine) accepts a lead and
nudges, and an engine with no poll to fall back on must hear of it through the broadcast both use (Redis,
or PostgreSQL's LISTEN/NOTIFY) and dial. The shop they serve is seeded here too."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from dialer import db
from dialer.broadcast.memory import Broadcast
from dialer.clock import SystemClock
from dialer.core.abuse_rules import UNGUARDED
from dialer.intake.accept import CallbackRequest, accept
from dialer.runtime import Runtime
from dialer.sites.admin import add_manager, add_site
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from tests.harness import build_runtime

ANN = "+12025550101"  # the shop's one manager


async def seed_shop(url: str) -> None:
    """The shop (open around the clock in real time, any visitor's country, no abuse checks) and Ann."""
    engine = db.create_engine(url)
    try:
        async with db.sessionmaker(engine)() as session, session.begin():
            site = await add_site(session, name="Shop", key="shop", timezone="UTC", any_country=True,
                                  now=datetime.now(UTC))
            site.settings = {"abuse": UNGUARDED, "calling_window": ["00:00", "24:00"]}
            await add_manager(session, site=site, name="Ann", phone=ANN)
    finally:
        await engine.dispose()


def _runtime(url: str, broadcast: Broadcast) -> tuple[Runtime, SimulatedProvider]:
    clock = SystemClock(50)
    sim = SimulatedProvider(clock)
    sim.script(ANN, Behaviour.never_answers())
    return build_runtime(url, clock=clock, provider=sim, broadcast=broadcast), sim


async def a_worker_hears_of_a_lead_the_web_accepted(url: str, broadcast: Callable[[], Broadcast]) -> None:
    """On the seeded shop: the worker alone dials Ann, and the web process is told the lead's changes."""
    web, web_sim = _runtime(url, broadcast())
    worker, worker_sim = _runtime(url, broadcast())
    await web.start(run_engine=False)
    await worker.start()
    try:
        async with web.sessions() as session, session.begin():
            lead, _ = await accept(session, CallbackRequest(site="shop", phone="+48501234567", timezone="UTC"),
                                   web.clock.now())
        async with web.broadcast.subscribe(f"lead:{lead.id}") as updates:
            web.engine.nudge()  # what the API does after accepting
            stream = aiter(updates)
            first = await asyncio.wait_for(anext(stream), 10)
            last = await asyncio.wait_for(anext(stream), 10)  # Ann never answers: the lead is missed
        assert (first["status"], last["status"]) == ("calling_manager", "missed")
        assert [d.to for d in worker_sim.dialed] == [ANN] and web_sim.dialed == []
    finally:
        await worker.close()
        await web.close()
