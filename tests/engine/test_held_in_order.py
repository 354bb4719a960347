"""Reports held while they could not be applied are applied in the order they came, together with what
came after them, before anything newer is decided on their lead (`dialer/engine/held.py`): whoever is
dialed next is chosen from everything the provider said, and nobody who talked is called again.

The steps fail here by a patch, not as for an absent database (the manual clock runs the simulator's
callbacks inline, so the hands' wait for the database would hold the clock up), and held reports are not
tried again until the "outage" is over (`held.running`), so that they are not counted as a lead whose
steps keep failing (`parking.py`). The first test's reports are held in the database; the second's is kept
in memory (`store_held.hold` fails too), as in an outage."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dialer.core.events import KeyPressed, LegAnswered, LegEnded, LegEvent
from dialer.db.models import HeldEvent, LeadEvent
from dialer.engine import store_held
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World, make_world
from tests.engine.test_outage import Outage

VISITOR = "+48501234567"
DECIDING = (LegAnswered, KeyPressed, LegEnded)


def failing_while(world: World, outage: Outage, about: Any) -> None:
    """While `outage.down`, a step whose work is a report `about(event)` picks fails (and held reports
    wait)."""
    real_step = world.engine._step

    async def step(batch: list[Any]) -> dict[str, Any]:
        if outage.down and any(work.event is not None and about(work.event) for _, work in batch):
            raise RuntimeError("this step cannot be applied now")
        return await real_step(batch)

    world.engine._step = step  # type: ignore[method-assign]


async def timeline(world: World, lead_id: str) -> list[str]:
    async with world.runtime.sessions() as session:
        query = select(LeadEvent.detail).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)
        return list((await session.execute(query)).scalars())


async def test_a_key_press_held_with_the_hang_up_after_it_never_dials_the_visitor_into_a_call_that_is_over(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first manager answers, presses 1 and hangs up a moment later, and none of it can be applied:
    # all three reports are held. When they are, the visitor must not be dialed into that manager's call,
    # which is over: the hunt goes on to the next manager, and the visitor is dialed once.
    world = await make_world(database_url, managers=2, poll_interval=1.0)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1_then_hangs_up(after=2, hangs_up_after=1))
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    outage = Outage(monkeypatch, names=())
    first_leg: set[str] = set()
    failing_while(world, outage, lambda event: event.leg_id in first_leg and isinstance(event, DECIDING))
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.clock.advance(0.5)
    first_leg.update(d.leg_id for d in world.sim.dialed)
    outage.down, world.engine.held.running = True, False
    await world.clock.advance(10)  # answered at 2, pressed 1 at 6, hung up at 7: nothing of it applied
    async with world.runtime.sessions() as session:
        held = list((await session.execute(select(HeldEvent.event))).scalars())
    assert [e["kind"] for e in held] == ["LegAnswered", "KeyPressed", "LegEnded"]
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0]]
    outage.down, world.engine.held.running = False, True
    done = await world.until_status(lead.id, "completed")
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], MANAGER_PHONES[1], VISITOR]
    assert done.outcome == "talked"
    await world.runtime.close()


async def test_a_visitors_answer_held_is_applied_before_their_end_and_they_are_not_called_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The visitor's answer cannot be applied (nor even held in the database); their end comes once all is
    # well again. The answer is applied first, and the lead completes as a conversation.
    world = await make_world(database_url, managers=1, poll_interval=1.0)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=20))
    outage = Outage(monkeypatch, names=())
    real_hold = store_held.hold

    async def hold(*args: Any, **kwargs: Any) -> None:
        if outage.down:
            outage.failures += 1
            raise RuntimeError("the report cannot be written now")
        await real_hold(*args, **kwargs)

    monkeypatch.setattr(store_held, "hold", hold)
    visitor_legs: set[str] = set()

    def the_visitors_answer(event: LegEvent) -> bool:
        return isinstance(event, LegAnswered) and event.leg_id in visitor_legs

    failing_while(world, outage, the_visitors_answer)
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.clock.advance(7)  # the manager pressed 1 at 6: the visitor is dialed
    visitor_legs.update(d.leg_id for d in world.sim.dialed if d.to == VISITOR)
    assert visitor_legs
    outage.down, world.engine.held.running = True, False
    await world.clock.advance(8)  # they answered: not applied, not held in the database
    assert outage.failures
    outage.down = False  # their end comes 20 s after their answer, before the held report's next try
    done = await world.until_status(lead.id, "completed", "scheduled")
    assert (done.status, done.outcome, done.attempt) == ("completed", "talked", 1)
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], VISITOR]
    lines = await timeline(world, lead.id)
    ended = next(i for i, line in enumerate(lines) if line.startswith("visitor: ended"))
    assert "visitor: answered" in lines[:ended], lines
    await world.runtime.close()


async def test_a_visitor_is_never_rung_from_a_managers_call_that_is_over(database_url: str) -> None:
    # The manager hangs up at the very moment the visitor's call is placed: the network cannot dial from a
    # call that is over (Twilio's 21220). That is the manager leaving, not the provider failing: the
    # visitor was never rung, and the hunt goes on to the next manager.
    world = await make_world(database_url, managers=2)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    real_place = world.sim.place_call
    hung_up: list[str] = []

    async def manager_leaves_first(request: Any) -> Any:
        if request.to == VISITOR and not hung_up:
            hung_up.append(request.bridge_sid)
            world.sim.attach(None)  # the report of the manager's hang-up comes after the dial's answer
            await world.sim.hangup(request.bridge_sid)  # the manager, just then
            try:
                return await real_place(request)
            finally:
                world.sim.attach(world.engine.on_provider_event)
        return await real_place(request)

    world.sim.place_call = manager_leaves_first  # type: ignore[method-assign]
    await world.engine.start()
    lead = await world.submit(VISITOR)
    done = await world.until_status(lead.id, "completed", "failed")
    assert (done.status, done.outcome) == ("completed", "talked")
    assert hung_up and [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], MANAGER_PHONES[1], VISITOR]
    await world.runtime.close()
