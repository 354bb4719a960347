"""On PostgreSQL with Redis configured, a Redis that goes away hands live updates to LISTEN/NOTIFY at once,
and takes them back when it returns, without a restart (two broadcasts stand for two processes)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from dialer.broadcast.fallback import FallbackBroadcast
from dialer.broadcast.memory import Message, SubscriberQueue
from dialer.broadcast.pg_notify import PgNotifyBroadcast
from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.config import Settings
from dialer.runtime import make_broadcast
from tests.broadcast.servers import OwnRedis, closed_url


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


def redis_publish_failures() -> float:
    return REGISTRY.get_sample_value("ringback_redis_fallbacks_total", {"part": "publish"}) or 0.0


async def heard(sub: SubscriberQueue, within: float = 5.0) -> Message:
    return await asyncio.wait_for(sub.queue.get(), within)


async def test_updates_keep_flowing_through_postgresql_while_redis_is_away(
    own_redis: OwnRedis, postgresql_url: str
) -> None:
    prefix = f"test-{secrets.token_hex(6)}:"
    web, worker = (FallbackBroadcast(RedisBroadcast(own_redis.url, prefix=prefix), PgNotifyBroadcast(postgresql_url))
                   for _ in range(2))
    try:
        async with web.subscribe("lead:1") as sub:
            await worker.publish("lead:1", {"version": 1})
            assert await heard(sub) == {"version": 1}
            own_redis.stop()
            failures = redis_publish_failures()
            await worker.publish("lead:1", {"version": 2})
            # At once, through LISTEN/NOTIFY: not after the live stream's 15 s re-read of the database.
            assert await heard(sub, within=2.0) == {"version": 2}
            assert redis_publish_failures() == failures + 1
            own_redis.start()
            # Back on Redis by itself: published until the subscriber's Redis connection is back too.
            async with asyncio.timeout(15):
                version = 2
                while True:
                    version += 1
                    failures = redis_publish_failures()
                    await worker.publish("lead:1", {"version": version})
                    went_through_redis = redis_publish_failures() == failures
                    try:  # lost while the subscriber's own Redis connection is not back yet
                        got = await heard(sub, within=0.5)
                    except TimeoutError:
                        continue
                    assert got == {"version": version}
                    if went_through_redis:
                        with contextlib.suppress(TimeoutError):  # and heard once only
                            extra = await heard(sub, within=0.3)
                            raise AssertionError(f"heard twice: {extra}")
                        break
    finally:
        await web.close()
        await worker.close()


@pytest.mark.parametrize(("url", "kind"), [
    ("postgresql+asyncpg://postgres@127.0.0.1/ringback", FallbackBroadcast),
    ("sqlite+aiosqlite:///./ringback.db", RedisBroadcast),
])
async def test_with_redis_postgresql_stands_by(url: str, kind: type) -> None:
    broadcast = make_broadcast(Settings(database_url=url, redis_url=closed_url()))
    try:
        assert isinstance(broadcast, kind)
    finally:
        await broadcast.close()
