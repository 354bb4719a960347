"""Web and engine in different processes on PostgreSQL without Redis: LISTEN/NOTIFY carries the live
updates and the nudges (`dialer/broadcast/pg_notify.py`).

The first test runs the real thing: `ringback serve --no-engine` and `ringback worker`; a visitor's
WebSocket on the web process follows what the worker does until the call is connected. The second shows
the nudge alone: an engine with no poll at all hears of a lead another runtime accepted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import websockets

from dialer import db
from dialer.broadcast.pg_notify import PgNotifyBroadcast
from dialer.clock import SystemClock
from dialer.core.abuse_rules import UNGUARDED
from dialer.intake.accept import CallbackRequest, accept
from dialer.runtime import Runtime
from dialer.sites.admin import add_manager, add_site
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from server import live
from tests.conftest import _truncate
from tests.harness import build_runtime
from tests.scale.cluster import Process, free_port

SPEED = 10


async def _seed(url: str) -> None:
    engine = db.create_engine(url)
    try:
        async with db.sessionmaker(engine)() as session, session.begin():
            site = await add_site(session, name="Shop", key="shop", timezone="UTC", any_country=True,
                                  now=datetime.now(UTC))
            site.settings = {"abuse": UNGUARDED, "calling_window": ["00:00", "24:00"]}
            await add_manager(session, site=site, name="Ann", phone="+12025550101")
    finally:
        await engine.dispose()


async def test_a_visitor_on_a_web_only_process_follows_the_worker_to_connected(
    postgresql_url: str, tmp_path: Path
) -> None:
    _truncate(postgresql_url)
    await _seed(postgresql_url)
    env = {
        "PATH": "/usr/bin:/bin",
        "RINGBACK_DATABASE_URL": postgresql_url,  # and no RINGBACK_REDIS_URL
        "RINGBACK_SECRET_KEY": secrets.token_urlsafe(32),
        "RINGBACK_SIMULATOR_SPEED": str(SPEED),
    }
    port = free_port()
    web = Process("web", ["serve", "--no-engine", "--port", str(port)], env, tmp_path)
    worker = Process("worker", ["worker"], env, tmp_path)
    async with contextlib.AsyncExitStack() as stack:
        for proc in (web, worker):
            stack.push_async_callback(proc.stop)
        await asyncio.gather(web.start("Uvicorn running on"), worker.start("worker started"))
        async with httpx2.AsyncClient(timeout=30) as http:
            # Unscripted people of the simulator answer: Ann presses 1, the visitor picks up.
            response = await http.post(f"http://127.0.0.1:{port}/api/v1/callbacks",
                                       json={"site": "shop", "phone": "+48501234567", "timezone": "UTC"})
            assert response.status_code == 201, response.text
        lead = response.json()
        submitted = time.monotonic()
        url = f"ws://127.0.0.1:{port}/api/v1/callbacks/{lead['id']}/live?token={lead['token']}"
        seen: list[str] = []
        async with websockets.connect(url, open_timeout=10) as ws:

            async def until_connected() -> None:
                async for raw in ws:
                    seen.append(json.loads(raw)["status"])
                    if seen[-1] == "connected":
                        return

            await asyncio.wait_for(until_connected(), 30)
        took = time.monotonic() - submitted
    # Each change as it happened, not only what a re-read of the database finds after a quiet while.
    assert [s for s in seen if s != "queued"] == ["calling_manager", "calling_visitor", "connected"], seen
    assert took < live.RECHECK_SECONDS, f"connected after {took:.1f} s: the updates did not come through"


async def test_an_engine_without_a_poll_hears_of_a_lead_another_process_accepted(postgresql_url: str) -> None:
    _truncate(postgresql_url)
    await _seed(postgresql_url)

    def runtime() -> tuple[Runtime, SimulatedProvider]:
        clock = SystemClock(50)
        sim = SimulatedProvider(clock)
        sim.script("+12025550101", Behaviour.never_answers())
        rt = build_runtime(postgresql_url, clock=clock, provider=sim, broadcast=PgNotifyBroadcast(postgresql_url))
        return rt, sim

    web, web_sim = runtime()
    worker, worker_sim = runtime()
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
        assert [d.to for d in worker_sim.dialed] == ["+12025550101"] and web_sim.dialed == []
    finally:
        await worker.close()
        await web.close()
