"""A lead accepted by a web-only process is picked up at once by an engine in another process, through
Redis, with no poll to fall back on. (Two runtimes on one database stand for two processes.)"""

from __future__ import annotations

import asyncio
import secrets

from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.clock import SystemClock
from dialer.intake.accept import CallbackRequest, accept
from dialer.runtime import Runtime
from dialer.sites.admin import add_manager, add_site
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from tests.harness import REDIS_URL, build_runtime


def _runtime(url: str, prefix: str) -> tuple[Runtime, SimulatedProvider]:
    clock = SystemClock(50)
    sim = SimulatedProvider(clock)
    sim.script("+12025550101", Behaviour.never_answers())
    return build_runtime(url, clock=clock, provider=sim, broadcast=RedisBroadcast(REDIS_URL, prefix=prefix)), sim


async def test_a_worker_hears_of_a_lead_the_web_process_accepted(database_url: str) -> None:
    prefix = f"test-{secrets.token_hex(6)}:"
    web, web_sim = _runtime(database_url, prefix)
    worker, worker_sim = _runtime(database_url, prefix)
    await web.start(run_engine=False)
    await worker.start()
    try:
        async with web.sessions() as session, session.begin():
            site = await add_site(session, name="Shop", key="shop", any_country=True, now=web.clock.now())
            site.settings = {"calling_window": ["00:00", "24:00"]}  # real time: the same at any hour
            await add_manager(session, site=site, name="Ann", phone="+12025550101")
        async with web.sessions() as session, session.begin():
            lead, _ = await accept(session, CallbackRequest(site="shop", phone="+48501234567", timezone="UTC"),
                                   web.clock.now())
        async with web.broadcast.subscribe(f"lead:{lead.id}") as updates:
            web.engine.nudge()  # what the API does after accepting
            stream = aiter(updates)
            first = await asyncio.wait_for(anext(stream), 10)
            last = await asyncio.wait_for(anext(stream), 10)  # Ann never answers: the lead is missed
        assert (first["status"], last["status"]) == ("calling_manager", "missed")
        assert [d.to for d in worker_sim.dialed] == ["+12025550101"]
        assert web_sim.dialed == []
    finally:
        await worker.close()
        await web.close()
