"""Rate limits per IP, visitor, number and site: 429 with Retry-After, nothing written, and the counts held
in the shared database (or Redis) so that they hold across processes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dialer.db.models import RateLimitCounter
from dialer.protection.ratelimit import RedisLimiter
from dialer.runtime import Runtime
from tests.harness import REDIS_URL
from tests.server.test_abuse_support import VISITOR, AbuseApi, abuse_api

# Numbers of the shop's own country (PL), all different.
NUMBERS = [f"+4850123{i:04d}" for i in range(20)]


@pytest.fixture
def api(database_url: str) -> Iterator[AbuseApi]:
    with abuse_api(database_url, {"abuse": {"form_token": False}}) as api:
        yield api


def limited(response: Any, field: str | None) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"].get("field") == field and response.json()["error"]["message"]
    return int(response.headers["retry-after"])


def test_a_few_requests_per_ip_then_429_until_the_window_ends(api: AbuseApi) -> None:
    api.settings(rate_limits={"ip": {"limit": 3, "window": 3600}})
    for number in NUMBERS[:3]:
        assert api.post(phone=number, ip="203.0.113.1").status_code == 201
    retry_after = limited(api.post(phone=NUMBERS[3], ip="203.0.113.1"), None)
    assert 0 < retry_after <= 3600
    assert api.count() == 3  # the refused request wrote nothing
    assert api.post(phone=NUMBERS[4], ip="203.0.113.2").status_code == 201  # another network is not affected
    api.advance(retry_after)
    assert api.post(phone=NUMBERS[5], ip="203.0.113.1").status_code == 201


def test_refused_requests_do_not_use_up_the_allowance(api: AbuseApi) -> None:
    api.settings(rate_limits={"ip": {"limit": 2, "window": 3600}, "site": {"limit": 3, "window": 3600}})
    assert api.post(phone=NUMBERS[0], ip="203.0.113.1").status_code == 201
    assert api.post(phone=NUMBERS[1], ip="203.0.113.1").status_code == 201
    for _ in range(5):
        limited(api.post(phone=NUMBERS[2], ip="203.0.113.1"), None)
    # The five refusals counted for neither the IP's limit nor the site's: the site still takes one more.
    assert api.post(phone=NUMBERS[3], ip="203.0.113.9").status_code == 201
    limited(api.post(phone=NUMBERS[4], ip="203.0.113.10"), None)


def test_per_visitor_id(api: AbuseApi) -> None:
    api.settings(rate_limits={"visitor": {"limit": 2, "window": 600}})
    for i in range(2):
        assert api.post(phone=NUMBERS[i], ip=f"203.0.113.{i}", visitor_id="v1").status_code == 201
    limited(api.post(phone=NUMBERS[2], ip="203.0.113.50", visitor_id="v1"), "visitor_id")
    assert api.post(phone=NUMBERS[3], ip="203.0.113.51", visitor_id="v2").status_code == 201


def test_per_site(api: AbuseApi) -> None:
    api.settings(rate_limits={"site": {"limit": 2, "window": 60}})
    for i in range(2):
        assert api.post(phone=NUMBERS[i], ip=f"203.0.113.{i}").status_code == 201
    assert 0 < limited(api.post(phone=NUMBERS[2], ip="203.0.113.99"), None) <= 60


def test_one_active_request_per_number(api: AbuseApi) -> None:
    first = api.post(ip="203.0.113.1")
    assert first.status_code == 201
    second = api.post(ip="203.0.113.2", phone="501 234 567")  # the same number typed another way
    limited(second, "phone")
    assert second.json()["error"]["code"] == "already_requested"
    assert api.count() == 1
    assert api.post(ip="203.0.113.2", message="Please call me tomorrow").status_code == 201  # a message dials nobody

    async def finish() -> None:
        await api.world.until_status(first.json()["id"], "completed", "missed", "unreachable")

    api.call(finish)
    assert api.post(ip="203.0.113.3").status_code == 201


def test_per_number_over_a_day(api: AbuseApi) -> None:
    api.settings(rate_limits={"phone": {"limit": 2, "window": 86400}}, one_active_per_number=False)
    for i in range(2):
        assert api.post(phone=VISITOR, ip=f"203.0.113.{i}").status_code == 201
    assert limited(api.post(phone=VISITOR, ip="203.0.113.7"), "phone") > 3600


def test_limits_can_be_switched_off_per_site(api: AbuseApi) -> None:
    api.settings(rate_limits={"ip": None, "site": None, "phone": None, "visitor": None})
    for i in range(8):
        assert api.post(phone=NUMBERS[i], ip="203.0.113.1").status_code == 201


def test_neither_ips_nor_numbers_are_stored_by_the_limiter(api: AbuseApi) -> None:
    assert api.post(ip="203.0.113.77", visitor_id="visitor-77").status_code == 201

    async def keys() -> list[str]:
        async with api.world.runtime.sessions() as session:
            return list((await session.execute(select(RateLimitCounter.key))).scalars())

    found = api.call(keys)
    assert len(found) == 5 and not any("203.0.113" in k or "501234567" in k or "visitor" in k for k in found)


def test_limits_hold_across_processes_sharing_the_database(api: AbuseApi) -> None:
    """A second server process on the same database (its own runtime, engine pool and limiter) sees the
    first one's counts."""
    api.settings(rate_limits={"ip": {"limit": 2, "window": 3600}})
    other = Runtime.build(api.world.runtime.settings, clock=api.world.clock, poll_interval=None)
    try:
        assert api.post(phone=NUMBERS[0], ip="203.0.113.1").status_code == 201
        assert _post_via(api, other, NUMBERS[1], "203.0.113.1") == 201
        limited(api.post(phone=NUMBERS[2], ip="203.0.113.1"), None)
        assert _post_via(api, other, NUMBERS[3], "203.0.113.1") == 429

        async def count() -> int:
            async with other.sessions() as session:
                return (await session.execute(select(func.count()).select_from(RateLimitCounter))).scalar_one()

        assert api.call(count) >= 1
    finally:
        api.call(other.close)


def _post_via(api: AbuseApi, runtime: Runtime, phone: str, ip: str) -> int:
    """Submit through `runtime`'s own app, as a request reaching another process would."""
    from starlette.testclient import TestClient

    from server.app import create_app
    from tests.server.test_abuse_support import _ClientAddress

    app = create_app(runtime=runtime, run_engine=False)
    with TestClient(_ClientAddress(app)) as client:
        response = client.post("/api/v1/callbacks", json={"site": "shop", "phone": phone},
                               headers={"x-test-client-ip": ip})
        # Connections belong to this client's event loop: let them go with it.
        client.portal.call(runtime.database.dispose)  # type: ignore[union-attr]
        client.portal.call(runtime.limiter.close)  # type: ignore[union-attr]
    return response.status_code


@pytest.fixture
def redis_api(database_url: str) -> Iterator[tuple[AbuseApi, str]]:
    prefix = f"test:{secrets.token_hex(6)}:"
    with abuse_api(database_url, {"abuse": {"form_token": False}}) as api:
        secret = api.world.runtime.settings.secret_key
        api.world.runtime.limiter = RedisLimiter(REDIS_URL, secret, prefix=prefix)
        yield api, prefix
        api.call(_forget, prefix)


async def _forget(prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    keys = [key async for key in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def test_limits_in_redis_hold_across_processes(redis_api: tuple[AbuseApi, str]) -> None:
    api, prefix = redis_api
    api.settings(rate_limits={"ip": {"limit": 2, "window": 3600}, "site": {"limit": 3, "window": 3600}})
    other = Runtime.build(api.world.runtime.settings, clock=api.world.clock, poll_interval=None)
    other.limiter = RedisLimiter(REDIS_URL, api.world.runtime.settings.secret_key, prefix=prefix)
    try:
        assert api.post(phone=NUMBERS[0], ip="203.0.113.1").status_code == 201
        assert _post_via(api, other, NUMBERS[1], "203.0.113.1") == 201
        retry_after = limited(api.post(phone=NUMBERS[2], ip="203.0.113.1"), None)
        assert 0 < retry_after <= 3600
        assert api.count() == 2
        # The refusal counted nowhere: the site's limit of 3 still has room for one more.
        assert _post_via(api, other, NUMBERS[3], "203.0.113.2") == 201
        limited(api.post(phone=NUMBERS[4], ip="203.0.113.3"), None)
    finally:
        api.call(other.close)

    async def counters() -> int:
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        found = [key async for key in redis.scan_iter(match=prefix + "*")]
        await redis.aclose()
        return len(found)

    assert api.call(counters) > 0
    assert api.count(RateLimitCounter) == 0  # nothing in the database when Redis keeps the counts




@pytest.fixture(params=["database", "redis"])
def any_limiter_api(request: pytest.FixtureRequest, database_url: str) -> Iterator[AbuseApi]:
    """The API with the limiter of either kind: the database's (the default) or Redis."""
    prefix = f"test:{secrets.token_hex(6)}:"
    with abuse_api(database_url, {"abuse": {"form_token": False}}) as api:
        if request.param == "redis":
            secret = api.world.runtime.settings.secret_key
            api.call(api.world.runtime.limiter.close)
            api.world.runtime.limiter = RedisLimiter(REDIS_URL, secret, prefix=prefix)
        yield api
        if request.param == "redis":
            api.call(_forget_at, REDIS_URL, prefix)


async def _forget_at(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    keys = [key async for key in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def test_a_request_refused_for_any_reason_uses_up_no_count(any_limiter_api: AbuseApi) -> None:
    """Refusals that come once the request is known to be well formed (the number is already being
    handled, the picked time is taken) leave the allowance as it was, in Redis as in the database."""
    api = any_limiter_api
    api.settings(rate_limits={"ip": {"limit": 2, "window": 3600}})
    assert api.post(phone=NUMBERS[0], ip="203.0.113.1").status_code == 201
    for _ in range(3):  # the same number again while its first request is being handled
        assert limited(api.post(phone=NUMBERS[0], ip="203.0.113.1"), "phone") > 0
    assert api.post(phone=NUMBERS[0], ip="203.0.113.1").json()["error"]["code"] == "already_requested"
    night = (api.world.clock.now() + timedelta(days=1)).astimezone(ZoneInfo("Europe/Warsaw")).replace(hour=3, minute=0)
    taken = api.post(phone=NUMBERS[1], ip="203.0.113.1", scheduled_for=night.isoformat())  # outside calling hours
    assert taken.status_code == 422 and taken.json()["error"]["code"] == "slot_unavailable"
    # One request of the two allowed is used: the next goes through, the one after is over the limit.
    assert api.post(phone=NUMBERS[2], ip="203.0.113.1").status_code == 201
    assert limited(api.post(phone=NUMBERS[3], ip="203.0.113.1"), None) > 0


def test_per_network_a_slash_24_shares_one_allowance(api: AbuseApi) -> None:
    """Many addresses of one block (one provider, a botnet's subnet) cannot each take the per-IP allowance."""
    api.settings(rate_limits={"network": {"limit": 3, "window": 3600}})
    for i in range(3):
        assert api.post(phone=NUMBERS[i], ip=f"203.0.113.{10 + i}").status_code == 201
    limited(api.post(phone=NUMBERS[3], ip="203.0.113.200"), None)
    assert api.post(phone=NUMBERS[4], ip="203.0.114.1").status_code == 201  # the next /24 is another network
    assert api.count() == 4


def test_the_default_limits_include_one_per_network() -> None:
    from dialer.core.abuse_rules import DEFAULT_RATE_LIMITS

    limit, window = DEFAULT_RATE_LIMITS["network"]
    assert DEFAULT_RATE_LIMITS["ip"][0] < limit and window == 3600
