"""One active request per number, held by the database itself: many requests for one new number at the
same moment (one per process, as behind a load balancer; counts in Redis, which cannot see the leads)
leave exactly one active lead, the others refused as ever, and nothing half-written or counted for them."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from dialer.db.models import Lead, LeadEvent
from dialer.protection.ratelimit import RedisLimiter
from server.app import create_app
from tests.harness import REDIS_URL, World, make_world

NUMBER = "+48501234567"
REQUESTS = 30


@pytest.fixture
async def redis_world(database_url: str) -> AsyncIterator[tuple[World, str]]:
    prefix = f"test:{secrets.token_hex(6)}:rl:"
    # The site's IP limit leaves room for two requests: the race must use up one of them, not thirty.
    limits = {"ip": {"limit": 2, "window": 3600}, "network": None}
    world = await make_world(database_url, site_settings={"abuse": {"form_token": False, "rate_limits": limits}})
    await world.runtime.limiter.close()
    world.runtime.limiter = RedisLimiter(REDIS_URL, world.runtime.settings.secret_key, prefix=prefix)
    try:
        yield world, prefix
    finally:
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await world.runtime.close()


async def _count(world: World, model: type, **where: object) -> int:
    async with world.runtime.sessions() as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return int((await session.execute(query)).scalar_one())


async def test_thirty_requests_at_once_for_one_number_make_one_lead(redis_world: tuple[World, str]) -> None:
    world, _ = redis_world
    apps = [create_app(runtime=world.runtime, run_engine=False) for _ in range(REQUESTS)]  # one per "process"
    start = asyncio.Event()

    async def one(app: object, i: int) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(f"203.0.113.{i % 2}", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await start.wait()
            return await client.post("/api/v1/callbacks", json={"site": "shop", "phone": NUMBER})

    tasks = [asyncio.create_task(one(app, i)) for i, app in enumerate(apps)]
    await asyncio.sleep(0)
    start.set()
    answers = await asyncio.gather(*tasks)

    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) == 1, codes
    refused = [r for r in answers if r.status_code != 201]
    assert all(r.status_code == 429 and r.json()["error"]["code"] in ("already_requested", "rate_limited")
               for r in refused), [r.text for r in refused]
    assert await _count(world, Lead, phone=NUMBER) == 1
    lead_id = next(r.json()["id"] for r in answers if r.status_code == 201)
    assert await _count(world, LeadEvent) == await _count(world, LeadEvent, lead_id=lead_id)  # no orphan lines

    # The refused ones used up nothing: the IP that won still has its second request.
    winner = next(i for i, r in enumerate(answers) if r.status_code == 201)
    transport = httpx.ASGITransport(app=apps[0], client=(f"203.0.113.{winner % 2}", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        second = await client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234568"})
        assert second.status_code == 201, second.text
        third = await client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234569"})
        assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limited"


def test_an_old_request_is_not_reopened_while_a_newer_one_for_the_number_is_in_hand(database_url: str) -> None:
    """The visitor missed our call, sent a new request, then used the old text's link: the database's
    rule holds there too, and the page says why instead of failing."""
    from dialer.telephony.simulator import Behaviour
    from tests.harness import MANAGER_PHONES
    from tests.server.test_abuse_support import abuse_api

    with abuse_api(database_url, {"abuse": {"form_token": False}}) as api:
        for phone in MANAGER_PHONES:
            api.world.sim.script(phone, Behaviour.never_answers())
        first = api.post(phone=NUMBER).json()["id"]
        api.call(api.world.until_status, first, "missed")
        second = api.post(phone=NUMBER, ip="198.51.100.8")
        assert second.status_code == 201, second.text
        sig = api.world.engine.notices.signature(first)
        page = api.client.get(f"/callback/{first}", params={"sig": sig})
        start = page.text.split("name=start value='", 1)[1].split("'", 1)[0]
        refused = api.client.post(f"/callback/{first}", data={"sig": sig, "start": start})
        assert refused.status_code == 422 and "newer request" in refused.text
        assert api.call(api.world.lead, first).status == "missed"
