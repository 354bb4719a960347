"""Redis is an optimisation, never a dependency: while it is away publishing drops the message quietly,
subscribing still returns (a subscription that hears nothing until Redis is back), and the visitor's live
stream opens, sends its snapshot and reads the database after a quiet spell."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator

import pytest

from dialer.broadcast.redis_pubsub import RedisBroadcast
from tests.broadcast.servers import OwnRedis, closed_url


async def test_publishing_with_redis_away_never_raises_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    broadcast = RedisBroadcast(closed_url())
    caplog.set_level(logging.WARNING, logger="ringback.redis")
    try:
        for version in range(5):
            await broadcast.publish("lead:1", {"version": version})
    finally:
        await broadcast.close()
    assert len([r for r in caplog.records if r.name == "ringback.redis"]) == 1


async def test_subscribing_with_redis_away_returns_a_subscription_that_hears_nothing() -> None:
    broadcast = RedisBroadcast(closed_url())
    try:
        async with asyncio.timeout(5):  # at once, not after Redis comes back
            async with broadcast.subscribe("lead:1") as sub:
                await broadcast.publish("lead:1", {"version": 1})
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(anext(aiter(sub)), 0.3)
    finally:
        await broadcast.close()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    server.stop()


async def test_a_subscription_made_while_redis_was_away_hears_it_once_it_is_back(own_redis: OwnRedis) -> None:
    prefix = f"test-{secrets.token_hex(6)}:"
    listener, talker = RedisBroadcast(own_redis.url, prefix=prefix), RedisBroadcast(own_redis.url, prefix=prefix)
    try:
        async with listener.subscribe("lead:1") as sub:
            own_redis.start()
            got = None
            async with asyncio.timeout(10):
                while got is None:  # published until the listener has subscribed again
                    await talker.publish("lead:1", {"version": 2})
                    with contextlib.suppress(TimeoutError):
                        got = await asyncio.wait_for(anext(aiter(sub)), 0.5)
            assert got == {"version": 2}
    finally:
        await listener.close()
        await talker.close()


async def test_a_subscription_that_worked_hears_again_after_redis_restarts(own_redis: OwnRedis) -> None:
    own_redis.start()
    prefix = f"test-{secrets.token_hex(6)}:"
    listener, talker = RedisBroadcast(own_redis.url, prefix=prefix), RedisBroadcast(own_redis.url, prefix=prefix)

    async def until_heard(sub: object, version: int) -> None:
        async with asyncio.timeout(15):
            while True:  # published until the listener has subscribed again
                await talker.publish("lead:1", {"version": version})
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(sub.queue.get(), 0.5) == {"version": version}:  # type: ignore[attr-defined]
                        return

    try:
        async with listener.subscribe("lead:1") as sub:
            await until_heard(sub, 1)
            own_redis.stop()
            async with asyncio.timeout(5):
                await talker.publish("lead:1", {"version": 2})  # dropped, never raised
            own_redis.start()
            await until_heard(sub, 3)
    finally:
        await listener.close()
        await talker.close()
