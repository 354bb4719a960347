"""Web and engine in different processes on PostgreSQL without Redis: LISTEN/NOTIFY carries the live
updates and the nudges (`dialer/broadcast/pg_notify.py`).

The first test runs the real thing: `ringback serve --no-engine` and `ringback worker`; a visitor's
WebSocket on the web process follows what the worker does until the call is connected. The second shows
the nudge alone: an engine with no poll at all hears of a lead another runtime accepted (as
tests/scale/test_nudges.py does through Redis; both in tests/scale/nudged.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from pathlib import Path

import httpx2
import websockets

from dialer.broadcast.pg_notify import PgNotifyBroadcast
from server import live
from tests.conftest import _truncate
from tests.scale.cluster import Process, free_port
from tests.scale.nudged import a_worker_hears_of_a_lead_the_web_accepted, seed_shop

SPEED = 10


async def test_a_visitor_on_a_web_only_process_follows_the_worker_to_connected(
    postgresql_url: str, tmp_path: Path
) -> None:
    _truncate(postgresql_url)
    await seed_shop(postgresql_url)
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
    await seed_shop(postgresql_url)
    await a_worker_hears_of_a_lead_the_web_accepted(postgresql_url, lambda: PgNotifyBroadcast(postgresql_url))
