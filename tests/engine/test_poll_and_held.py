"""The engine as `ringback worker` runs it, polling (`poll_interval` set), and the provider reports it could
not apply when they came: held in the database and applied later, by whichever engine gets to them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from dialer.core.events import KeyPressed
from dialer.db.models import CallLeg, HeldEvent, LeadEvent, Manager
from dialer.engine import Engine
from dialer.intake.accept import CallbackRequest, accept
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World, make_world

VISITOR = "+48501234567"


async def unannounced(world: World, phone: str = VISITOR) -> str:
    """A lead written by another process whose announcement never came: only a poll finds it."""
    async with world.runtime.sessions() as session, session.begin():
        lead, _ = await accept(session, CallbackRequest(site=world.site.key, phone=phone, timezone="Europe/Warsaw"),
                               world.clock.now())
    return lead.id


async def test_polling_finds_a_lead_nobody_announced_and_hunts_as_usual(database_url: str) -> None:
    world = await make_world(database_url, managers=2, poll_interval=1.0)
    world.sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    await world.engine.start()
    await world.clock.advance(3)
    lead_id = await unannounced(world)
    written = world.clock.now()
    done = await world.until_status(lead_id, "completed")
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], MANAGER_PHONES[1], VISITOR]
    assert world.sim.dialed[0].at - written <= timedelta(seconds=1)  # within one poll
    assert done.outcome == "talked"
    await world.runtime.close()


async def test_a_manager_put_back_on_the_rota_takes_the_queued_lead_by_the_safety_poll(database_url: str) -> None:
    # One manager talking, a second lead queued; the owner then makes a second manager active from the
    # dashboard, which tells no engine: the poll's safety net finds the free manager and the waiting lead.
    world = await make_world(database_url, managers=2, poll_interval=1.0)
    async with world.runtime.sessions() as session, session.begin():
        await session.execute(update(Manager).where(Manager.phone == MANAGER_PHONES[1]).values(active=False))
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=2))
    world.sim.script("+48501234561", Behaviour.answers(after=2, talk_for=600))
    world.sim.script("+48501234562", Behaviour.answers(after=2, talk_for=30))
    await world.engine.start()
    first = await world.submit("+48501234561")
    await world.clock.advance(10)
    second = await world.submit("+48501234562")
    await world.clock.advance(30)
    queued = await world.lead(second.id)
    assert queued.status == "queued" and queued.wake_at is None  # waiting, with no wake-up of its own
    async with world.runtime.sessions() as session, session.begin():
        await session.execute(update(Manager).where(Manager.phone == MANAGER_PHONES[1]).values(active=True))
    activated = world.clock.now()
    await world.until_status(second.id, "completed")
    rung = [d for d in world.sim.dialed if d.to == MANAGER_PHONES[1]]
    assert rung and rung[0].at - activated <= timedelta(seconds=11)  # the safety poll runs every 10 s
    assert (await world.lead(first.id)).status == "connected"  # the first call goes on meanwhile
    await world.runtime.close()


async def test_a_queued_lead_is_not_rewritten_while_it_waits(database_url: str) -> None:
    world = await make_world(database_url, managers=1, poll_interval=1.0)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script("+48501234561", Behaviour.answers(after=2, talk_for=300))
    world.sim.script("+48501234562", Behaviour.answers(after=2, talk_for=30))
    await world.engine.start()
    await world.submit("+48501234561")
    await world.clock.advance(10)
    second = await world.submit("+48501234562")
    await world.clock.advance(5)
    version = (await world.lead(second.id)).version
    await world.clock.advance(200)  # many polls, many old 30 s re-checks
    waiting = await world.lead(second.id)
    assert waiting.status == "queued" and waiting.version == version
    done = await world.until_status(second.id, "completed")
    # Rung the moment the manager was free: the first call's end is the second's first ring.
    async with world.runtime.sessions() as session:
        first_end = (await session.execute(
            select(func.max(CallLeg.ended_at)).where(CallLeg.lead_id != second.id, CallLeg.role == "manager")
        )).scalar_one()
        second_ring = (await session.execute(
            select(func.min(CallLeg.created_at)).where(CallLeg.lead_id == second.id)
        )).scalar_one()
    assert second_ring == first_end
    assert done.outcome == "talked"
    await world.runtime.close()


async def test_a_report_that_cannot_be_applied_is_held_and_applied_later_by_another_engine(
    database_url: str,
) -> None:
    world = await make_world(database_url, managers=1, poll_interval=1.0)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    first = world.engine
    real_step = first._step

    async def step_failing_on_key_press(batch):  # type: ignore[no-untyped-def]
        if any(isinstance(work.event, KeyPressed) for _, work in batch):
            raise RuntimeError("this step cannot be applied now")
        return await real_step(batch)

    first._step = step_failing_on_key_press  # type: ignore[method-assign]
    await first.start()
    lead = await world.submit(VISITOR)
    await world.clock.advance(6)  # rung at 0, answered at 2, pressed 1 at 4: the report failed
    async with world.runtime.sessions() as session:
        held = list((await session.execute(select(HeldEvent))).scalars())
    assert [(h.lead_id, h.event["kind"], h.event["digits"]) for h in held] == [(lead.id, "KeyPressed", "1")]
    assert (await world.lead(lead.id)).status == "calling_manager"
    await first.stop()  # this engine never gets to it

    second = Engine(world.runtime.sessions, world.sim, world.clock, world.runtime.broadcast, poll_interval=1.0)
    await second.start()
    done = await world.until_status(lead.id, "completed")
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], VISITOR]
    assert done.outcome == "talked"
    async with world.runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(HeldEvent))).scalar_one() == 0
        lines = list((await session.execute(
            select(LeadEvent.detail).where(LeadEvent.lead_id == lead.id).order_by(LeadEvent.id))).scalars())
    assert lines.count("manager M1: pressed 1") == 1, lines  # applied once, not by both engines
    await second.stop()
    await world.runtime.close()
