"""A step is dialed once, whoever else is trying: two engines on one database (each its own connection and
its own simulated network, as two processes are) race over one leg, and one call reaches the provider."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.db.models import CallLeg
from dialer.engine.engine import Engine
from dialer.telephony.base import CallRequest
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from tests.conftest import MANAGER_PHONES, World, make_world

VISITOR = "+48501234567"


async def _waiting_on_a_lock(database: AsyncEngine) -> None:
    """Returns once some other connection waits for a row lock (PostgreSQL); never on SQLite."""
    if database.dialect.name != "postgresql":
        await asyncio.Event().wait()
    query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
    while True:
        async with database.connect() as conn:
            if (await conn.execute(query)).scalar_one():
                return
        await asyncio.sleep(0.01)


def _second_engine(world: World) -> tuple[Engine, SimulatedProvider]:
    sim = SimulatedProvider(world.clock, seed=8)  # another process: its own network, its own lookups
    engine = Engine(world.runtime.sessions, sim, world.clock, world.runtime.broadcast, poll_interval=None)
    return engine, sim


async def test_a_recovery_racing_a_dial_in_flight_does_not_dial_again(database_url: str) -> None:
    world = await make_world(database_url, managers=1)
    world.sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    other, other_sim = _second_engine(world)
    real_place = world.sim.place_call
    dialing, go_on = asyncio.Event(), asyncio.Event()

    async def slow_place(request: CallRequest) -> str | None:
        dialing.set()  # the first engine is asking the provider now
        await go_on.wait()
        return await real_place(request)

    other_placed = asyncio.Event()
    other_place = other_sim.place_call

    async def placing(request: CallRequest) -> str | None:
        other_placed.set()
        return await other_place(request)

    world.sim.place_call = slow_place  # type: ignore[method-assign]
    other_sim.place_call = placing  # type: ignore[method-assign]
    await world.submit(VISITOR)
    await world.engine.start()
    stepping = asyncio.ensure_future(world.clock.advance(0))  # steps the lead, writes its leg, dials it
    await dialing.wait()
    # Meanwhile another engine starts and looks for legs written but never confirmed.
    recovering = asyncio.ensure_future(other.recover_pending_legs(older_than=0))
    blocked = asyncio.ensure_future(_waiting_on_a_lock(world.runtime.engine.database))
    placed = asyncio.ensure_future(other_placed.wait())
    await asyncio.wait([recovering, blocked, placed], return_when=asyncio.FIRST_COMPLETED)
    go_on.set()
    await stepping
    await recovering
    blocked.cancel()
    placed.cancel()

    dials = [d.leg_id for d in world.sim.dialed] + [d.leg_id for d in other_sim.dialed]
    assert len(dials) == 1, f"the leg was dialed {len(dials)} times"
    await world.runtime.close()


async def test_two_recoveries_of_an_unconfirmed_claim_look_it_up_and_one_acts(database_url: str) -> None:
    world = await make_world(database_url, managers=1)
    world.sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    second, second_sim = _second_engine(world)
    third, third_sim = _second_engine(world)

    async def crash(request: CallRequest) -> str | None:
        raise ConnectionError("the process died while asking the provider")

    world.sim.place_call = crash  # type: ignore[method-assign]
    await world.submit(VISITOR)
    await world.engine.start()
    await world.clock.advance(0)
    await world.engine.stop()
    async with world.runtime.sessions() as session:
        leg = (await session.execute(select(CallLeg))).scalar_one()
    assert leg.provider_sid is None and leg.dial_claimed_at is not None  # claimed, never confirmed

    # A claim younger than the grace is somebody's dial in flight: left alone.
    await second.recover_pending_legs(older_than=0)
    assert not second_sim.dialed

    looked_up: list[str] = []
    for sim in (second_sim, third_sim):
        real_find = sim.find_call

        async def find(request: CallRequest, since: object, real=real_find) -> str | None:  # type: ignore[no-untyped-def]
            looked_up.append(request.leg_id)
            await asyncio.sleep(0)  # let the other recoverer run meanwhile
            return await real(request, since)  # type: ignore[arg-type]

        sim.find_call = find  # type: ignore[method-assign]
    async with world.runtime.sessions() as session, session.begin():  # the claim is an hour old
        await session.execute(update(CallLeg).values(dial_claimed_at=leg.dial_claimed_at - timedelta(hours=1)))
    await asyncio.gather(second.recover_pending_legs(older_than=60), third.recover_pending_legs(older_than=60))
    assert looked_up == [leg.id]  # one recoverer won the claim, and asked the provider before dialing
    assert [d.leg_id for d in second_sim.dialed + third_sim.dialed] == [leg.id]
    async with world.runtime.sessions() as session:
        after = await session.get(CallLeg, leg.id)
        assert after is not None and after.provider_sid is not None
    await world.runtime.close()

