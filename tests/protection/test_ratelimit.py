"""The limiter under concurrency: many requests at once, from two processes' worth of connections, are
counted exactly, in the database (SQLite and PostgreSQL) and in Redis."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dialer import db
from dialer.core.errors import RateLimited
from dialer.db.models import RateLimitCounter
from dialer.protection.ratelimit import DatabaseLimiter, Limiter, RedisLimiter, Rule, counters
from tests.harness import REDIS_URL

NOW = datetime(2026, 11, 2, 12, 0, 30, tzinfo=UTC)
SECRET = "test-secret"


async def _hit_all(url: str, limiters: list[Limiter], rules: list[Rule], attempts: int) -> tuple[int, int]:
    """`attempts` requests at once, spread over two engines (as two processes would be)."""
    engines = [db.create_engine(url) for _ in limiters]
    makers = [db.sessionmaker(engine) for engine in engines]

    async def one(i: int) -> bool:
        try:
            # As in the API: the refusal leaves the transaction, which rolls back.
            async with makers[i % len(makers)]() as session, session.begin():
                await limiters[i % len(limiters)].hit(session, rules, NOW)
        except RateLimited:
            return False
        return True

    try:
        results = await asyncio.gather(*(one(i) for i in range(attempts)))
    finally:
        for engine in engines:
            await engine.dispose()
    return sum(results), attempts - sum(results)


async def test_concurrent_requests_are_counted_exactly_in_the_database(database_url: str) -> None:
    rules = [Rule("ip", "1|203.0.113.1", 5, 3600)]
    accepted, refused = await _hit_all(database_url, [DatabaseLimiter(SECRET), DatabaseLimiter(SECRET)], rules, 20)
    assert (accepted, refused) == (5, 15)
    engine = db.create_engine(database_url)
    async with db.sessionmaker(engine)() as session:
        stored = (await session.execute(select(RateLimitCounter.count))).scalars().all()
    await engine.dispose()
    assert list(stored) == [5]  # refused requests were rolled back, not counted


async def test_concurrent_requests_are_counted_exactly_in_redis(database_url: str) -> None:
    prefix = f"test:{secrets.token_hex(6)}:"
    limiters: list[Limiter] = [RedisLimiter(REDIS_URL, SECRET, prefix=prefix) for _ in range(2)]
    rules = [Rule("ip", "1|203.0.113.1", 5, 3600), Rule("site", "1|", 7, 3600)]
    try:
        accepted, refused = await _hit_all(database_url, limiters, rules, 20)
        assert (accepted, refused) == (5, 15)
        # Only the five accepted requests counted against the site: two more from elsewhere fit.
        other = [Rule("ip", "1|203.0.113.2", 5, 3600), Rule("site", "1|", 7, 3600)]
        accepted, refused = await _hit_all(database_url, limiters, other, 4)
        assert (accepted, refused) == (2, 2)
    finally:
        redis = limiters[0]._redis  # type: ignore[attr-defined]
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        for limiter in limiters:
            await limiter.close()


def test_windows_are_fixed_and_retry_after_points_at_the_end() -> None:
    rule = Rule("ip", "1|x", 5, 3600)
    (counter,) = counters(SECRET, [rule], NOW)
    assert counter.window_end == datetime(2026, 11, 2, 13, 0, tzinfo=UTC)
    assert counter.retry_after(NOW) == 3600 - 30
    (later,) = counters(SECRET, [rule], NOW + timedelta(hours=1))
    assert later.key != counter.key
    (other_secret,) = counters("another", [rule], NOW)
    assert other_secret.key != counter.key and "x" not in counter.key


@pytest.mark.parametrize("limit", [0])
async def test_a_limit_of_zero_refuses_everything(database_url: str, limit: int) -> None:
    accepted, _ = await _hit_all(database_url, [DatabaseLimiter(SECRET)], [Rule("site", "1|", limit, 60)], 3)
    assert accepted == 0
    engine = db.create_engine(database_url)
    async with db.sessionmaker(engine)() as session:
        assert (await session.execute(select(func.count()).select_from(RateLimitCounter))).scalar_one() == 0
    await engine.dispose()


async def test_redis_keys_start_with_the_configured_prefix_and_can_be_given_back(database_url: str) -> None:
    """RINGBACK_REDIS_PREFIX holds for the rate limits as for every other key; counts of a request that
    was not written after all (its commit failed) are given back."""
    from dialer.protection.ratelimit import make_limiter

    prefix = f"test-{secrets.token_hex(6)}:"
    limiter = make_limiter(SECRET, REDIS_URL, prefix)
    rules = [Rule("ip", "1|203.0.113.1", 1, 3600)]
    engine = db.create_engine(database_url)
    redis = limiter._redis  # type: ignore[attr-defined]
    try:
        async with db.sessionmaker(engine)() as session:
            counted = await limiter.hit(session, rules, NOW)
            keys = [key.decode() async for key in redis.scan_iter(match="*")]
            assert [k for k in keys if k.startswith(prefix)] == [prefix + "rl:" + counters(SECRET, rules, NOW)[0].key]
            await limiter.give_back(counted)
            await limiter.hit(session, rules, NOW)  # the allowance of one is there again
            with pytest.raises(RateLimited):
                await limiter.hit(session, rules, NOW)
    finally:
        found = [key async for key in redis.scan_iter(match=prefix + "*")]
        if found:
            await redis.delete(*found)
        await limiter.close()
        await engine.dispose()
