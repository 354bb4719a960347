"""The Redis broadcast carries live updates between processes (two instances stand for two processes)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from dialer.broadcast.redis_pubsub import RedisBroadcast
from tests.harness import REDIS_URL


@pytest.fixture
async def pair() -> AsyncIterator[tuple[RedisBroadcast, RedisBroadcast]]:
    prefix = f"test-{secrets.token_hex(6)}:"
    a, b = RedisBroadcast(REDIS_URL, prefix=prefix), RedisBroadcast(REDIS_URL, prefix=prefix)
    yield a, b
    await a.close()
    await b.close()


async def test_a_subscriber_in_one_process_hears_a_publisher_in_another(
    pair: tuple[RedisBroadcast, RedisBroadcast],
) -> None:
    a, b = pair
    async with a.subscribe("lead:1") as first, a.subscribe("lead:1") as second, a.subscribe("lead:2") as other:
        await b.publish("lead:1", {"status": "calling_manager", "version": 2})
        await b.publish("lead:2", {"status": "queued", "version": 1})
        got = [await asyncio.wait_for(anext(aiter(sub)), 5) for sub in (first, second, other)]
    assert got == [
        {"status": "calling_manager", "version": 2},
        {"status": "calling_manager", "version": 2},
        {"status": "queued", "version": 1},
    ]


async def test_messages_arrive_in_order_and_a_left_channel_is_quiet(
    pair: tuple[RedisBroadcast, RedisBroadcast],
) -> None:
    a, b = pair
    async with a.subscribe("site:7") as sub:
        for version in range(1, 51):
            await b.publish("site:7", {"version": version})
        versions = [(await asyncio.wait_for(anext(aiter(sub)), 5))["version"] for _ in range(50)]
    assert versions == list(range(1, 51))
    # Nobody listens now: Redis reports no subscriber for the channel.
    assert await b._redis.publish(b.prefix + "site:7", "{}") == 0


async def test_another_prefix_is_another_installation(pair: tuple[RedisBroadcast, RedisBroadcast]) -> None:
    a, _ = pair
    stranger = RedisBroadcast(REDIS_URL, prefix=f"test-{secrets.token_hex(6)}:")
    try:
        async with a.subscribe("lead:1") as sub:
            await stranger.publish("lead:1", {"version": 99})
            await a.publish("lead:1", {"version": 1})
            assert await asyncio.wait_for(anext(aiter(sub)), 5) == {"version": 1}
    finally:
        await stranger.close()


async def test_a_burst_of_publishes_larger_than_the_connection_pool_is_delivered_whole(
    pair: tuple[RedisBroadcast, RedisBroadcast],
) -> None:
    """A batch of 50 leads and its sites' channels publish at once, from several hands: more than redis-py's
    100 connections. None may be refused for want of a connection (MaxConnectionsError)."""
    a, b = pair
    async with a.subscribe("site:7") as sub:
        await asyncio.gather(*(b.publish("site:7", {"version": v}) for v in range(400)))
        got = {(await asyncio.wait_for(sub.queue.get(), 5))["version"] for _ in range(400)}
    assert got == set(range(400))
