"""Nudges between processes tolerate Redis going away: the relays start while Redis is down (the poll
covers the gap) and carry announcements once it is back, without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Iterator
from typing import cast

import pytest

from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.engine import Engine
from dialer.engine.nudges import NudgeRelay
from tests.broadcast.servers import OwnRedis


class FakeEngine:
    """What a relay uses of an engine: `announce` (set by the relay) and `nudge`."""

    def __init__(self) -> None:
        self.announce: Callable[[], None] | None = None
        self.nudged = asyncio.Event()

    def nudge(self, *, announce: bool = True) -> None:
        self.nudged.set()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    server.stop()


async def test_relays_started_while_redis_is_away_carry_nudges_once_it_is_back(own_redis: OwnRedis) -> None:
    prefix = f"test-{secrets.token_hex(6)}:"
    broadcasts = [RedisBroadcast(own_redis.url, prefix=prefix) for _ in range(2)]
    engines = [FakeEngine(), FakeEngine()]
    relays = [NudgeRelay(b, cast(Engine, e)) for b, e in zip(broadcasts, engines, strict=True)]
    try:
        async with asyncio.timeout(5):
            for relay in relays:
                await relay.start()  # returns although Redis is down
        relays[0].announce()  # lost: nobody to carry it, and no error
        own_redis.start()
        async with asyncio.timeout(10):
            while not engines[1].nudged.is_set():  # announced until the listener has subscribed again
                relays[0].announce()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(engines[1].nudged.wait(), 0.5)
        assert not engines[0].nudged.is_set()  # its own announcements are not for itself
    finally:
        for relay in relays:
            await relay.stop()
        for broadcast in broadcasts:
            await broadcast.close()




async def _until_nudged(sender: NudgeRelay, engine: FakeEngine) -> None:
    engine.nudged.clear()
    async with asyncio.timeout(15):
        while not engine.nudged.is_set():  # announced until the listener has subscribed again
            sender.announce()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(engine.nudged.wait(), 0.5)


async def test_relays_that_worked_carry_nudges_again_after_redis_restarts(own_redis: OwnRedis) -> None:
    from prometheus_client import REGISTRY

    def fallbacks() -> float:
        return REGISTRY.get_sample_value("ringback_redis_fallbacks_total", {"part": "publish"}) or 0.0

    own_redis.start()
    prefix = f"test-{secrets.token_hex(6)}:"
    broadcasts = [RedisBroadcast(own_redis.url, prefix=prefix) for _ in range(2)]
    engines = [FakeEngine(), FakeEngine()]
    relays = [NudgeRelay(b, cast(Engine, e)) for b, e in zip(broadcasts, engines, strict=True)]
    try:
        for relay in relays:
            await relay.start()
        await _until_nudged(relays[0], engines[1])
        own_redis.stop()
        before = fallbacks()
        relays[0].announce()  # lost, and no error
        await asyncio.gather(*relays[0]._sending)
        assert fallbacks() == before + 1  # counted as a fallback (ringback_redis_fallbacks_total)
        own_redis.start()  # the same port: the relays find it again by themselves
        await _until_nudged(relays[0], engines[1])
        await _until_nudged(relays[1], engines[0])  # both ways
    finally:
        for relay in relays:
            await relay.stop()
        for broadcast in broadcasts:
            await broadcast.close()
