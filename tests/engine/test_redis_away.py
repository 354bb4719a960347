"""A publish never stands between a step and its dial: with the broadcast's Redis away (or a broadcast that
fails outright) a lead due now is dialed at once, not by recovery a minute later."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from dialer.broadcast.memory import Broadcast, MemoryBroadcast, Message
from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.clock import ManualClock
from dialer.telephony.simulator import SimulatedProvider
from tests.broadcast.servers import closed_url
from tests.harness.world import World, add_shop, build_runtime


class FailingBroadcast(MemoryBroadcast):
    """A broadcast whose every publish fails, as any could."""

    async def publish(self, channel: str, message: Message) -> None:
        raise ConnectionError("the broadcast is down")


async def _world(url: str, broadcast: Broadcast) -> World:
    clock = ManualClock()
    sim = SimulatedProvider(clock, seed=7)
    runtime = build_runtime(url, clock=clock, provider=sim, broadcast=broadcast)
    async with runtime.sessions() as session, session.begin():
        site = await add_shop(session, now=clock.now())
    await runtime.start()
    return World(runtime, clock, sim, site)


@pytest.fixture(params=[lambda: RedisBroadcast(closed_url()), FailingBroadcast], ids=["redis-away", "failing"])
async def world_away(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    make: Callable[[], Broadcast] = request.param
    world = await _world(database_url, make())
    yield world
    await world.runtime.close()


async def test_a_lead_due_now_is_dialed_at_once_when_publishing_fails(world_away: World) -> None:
    world = world_away
    start = world.clock.now()
    await world.submit()

    async def dialed() -> bool:
        return bool(world.sim.dialed)

    await world.clock.run_until(dialed, limit=10)  # recovery would take 60 simulated seconds
    assert world.sim.dialed[0].at < start + timedelta(seconds=10)
