"""Redis is an optimisation, never a dependency: while it is away the limiter counts in the database (the
limits still hold and intake still answers), and it goes back to Redis once Redis is back."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aredis
from sqlalchemy import func, select

from dialer import db
from dialer.core.errors import RateLimited
from dialer.db.models import RateLimitCounter
from dialer.protection.ratelimit import RedisLimiter, Rule
from tests.broadcast.servers import OwnRedis, closed_url
from tests.server.test_abuse_support import AbuseApi, abuse_api

NOW = datetime(2026, 11, 2, 12, 0, 30, tzinfo=UTC)
SECRET = "test-secret"
RULES = [Rule("ip", "1|203.0.113.1", 5, 3600)]


async def _hits(url: str, limiter: RedisLimiter, attempts: int) -> tuple[int, int]:
    engine = db.create_engine(url)
    accepted = 0
    try:
        for _ in range(attempts):
            try:
                async with db.sessionmaker(engine)() as session, session.begin():
                    await limiter.hit(session, RULES, NOW)
                accepted += 1
            except RateLimited:
                pass
    finally:
        await engine.dispose()
    return accepted, attempts - accepted


async def _stored(url: str) -> int:
    engine = db.create_engine(url)
    async with db.sessionmaker(engine)() as session:
        total = (await session.execute(select(func.coalesce(func.sum(RateLimitCounter.count), 0)))).scalar_one()
    await engine.dispose()
    return int(total)


async def test_with_redis_away_the_limits_hold_in_the_database_and_the_outage_is_logged_once(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisLimiter(closed_url(), SECRET)
    caplog.set_level(logging.WARNING, logger="ringback.ratelimit")
    try:
        assert await _hits(database_url, limiter, 8) == (5, 3)
    finally:
        await limiter.close()
    assert await _stored(database_url) == 5  # counted in the database; the refusals rolled back
    assert len([r for r in caplog.records if r.name == "ringback.ratelimit"]) == 1


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    server.stop()


async def test_the_limiter_goes_back_to_redis_when_it_returns_without_a_restart(
    database_url: str, own_redis: OwnRedis
) -> None:
    prefix = f"test:{secrets.token_hex(6)}:"
    limiter = RedisLimiter(own_redis.url, SECRET, prefix=prefix)  # Redis not started yet
    direct = aredis.Redis.from_url(own_redis.url)
    try:
        assert await _hits(database_url, limiter, 2) == (2, 0)
        assert limiter.away and await _stored(database_url) == 2
        own_redis.start()
        assert await _hits(database_url, limiter, 1) == (1, 0)
        assert not limiter.away
        assert len(await direct.keys(prefix + "*")) == 1  # this one was counted in Redis
        assert await _stored(database_url) == 2
        own_redis.stop()
        assert await _hits(database_url, limiter, 1) == (1, 0)  # away again: the database once more
        assert limiter.away and await _stored(database_url) == 3
    finally:
        await direct.aclose()
        await limiter.close()


@pytest.fixture
def api(database_url: str) -> Iterator[AbuseApi]:
    with abuse_api(database_url, {"abuse": {"form_token": False}}) as api:
        api.world.runtime.limiter = RedisLimiter(closed_url(), api.world.runtime.settings.secret_key)
        yield api


def test_intake_answers_201_and_still_limits_with_redis_away(api: AbuseApi) -> None:
    api.settings(rate_limits={"ip": {"limit": 2, "window": 3600}})
    for number in ("+48501230001", "+48501230002"):
        created = api.post(phone=number, ip="203.0.113.1")
        assert created.status_code == 201, created.text
    refused = api.post(phone="+48501230003", ip="203.0.113.1")
    assert refused.status_code == 429, refused.text
    assert api.post(phone="+48501230004", ip="203.0.113.2").status_code == 201
    assert api.count(RateLimitCounter) >= 1
