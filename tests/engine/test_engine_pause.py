"""A stopping worker claims nothing more, but finishes the calls it has in hand; another engine takes
what it left."""

from __future__ import annotations

from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, make_world

FIRST, SECOND = "+48501234567", "+48501234568"


async def test_a_paused_engine_finishes_its_calls_and_leaves_new_leads_to_others(database_url: str) -> None:
    world = await make_world(database_url, managers=2)
    for phone in MANAGER_PHONES[:2]:
        world.sim.script(phone, Behaviour.presses_1(after=3.0))
    world.sim.script(FIRST, Behaviour.answers(after=3, talk_for=30))
    world.sim.script(SECOND, Behaviour.answers(after=3, talk_for=30))
    await world.engine.start()
    first = await world.submit(FIRST)
    await world.until_status(first.id, "calling_manager")

    world.engine.pause()  # what SIGTERM does to a worker
    second = await world.submit(SECOND)
    done = await world.until_status(first.id, "completed")
    assert done.status == "completed"  # the call in hand went on: visitor dialed, bridged, ended
    assert (await world.lead(second.id)).status == "queued"  # nothing new was claimed
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], FIRST]

    other = world.runtime.engine.__class__(
        world.runtime.sessions, world.sim, world.clock, world.runtime.broadcast, poll_interval=None
    )
    await other.start()
    await world.until_status(second.id, "completed")
    assert [d.to for d in world.sim.dialed][2:] == [MANAGER_PHONES[0], SECOND]
    await other.stop()
    await world.runtime.close()
