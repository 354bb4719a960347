"""The engine on the simulator, against SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from dialer.core import views
from dialer.db.models import CallLeg
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World, make_world, script_hunt

VISITOR = "+48501234567"


async def legs(world: World, lead_id: str) -> list[CallLeg]:
    async with world.runtime.sessions() as session:
        rows = await session.execute(select(CallLeg).where(CallLeg.lead_id == lead_id).order_by(CallLeg.created_at))
        return list(rows.scalars())


async def test_full_hunt_ends_in_a_bridged_priced_call(world: World) -> None:
    script_hunt(world.sim)
    world.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=95))
    lead = await world.submit(VISITOR)
    done = await world.until_status(lead.id, "completed")
    await world.clock.advance(10)  # prices arrive late

    dialed = [d.to for d in world.sim.dialed]
    assert dialed == [*MANAGER_PHONES, VISITOR]
    rows = await legs(world, lead.id)
    assert [(r.role, r.end_reason, r.accepted) for r in rows] == [
        ("manager", "no_answer", False),
        ("manager", "completed", False),  # the voicemail: answered, never pressed 1
        ("manager", "completed", True),
        ("visitor", "completed", False),
    ]
    assert rows[3].duration == 95
    assert rows[3].bridged_to == rows[2].id
    # 95 s is two started minutes; Polish mobile at 0.035/min, the US manager at 0.014/min.
    assert str(rows[3].price) == "0.07000"
    assert str(rows[0].price) == "0.00000"
    assert done.outcome == "talked"


async def test_voicemail_alone_never_wins(database_url: str) -> None:
    world = await make_world(database_url, managers=2)
    await world.engine.start()
    world.sim.script(MANAGER_PHONES[0], Behaviour.voicemail_after(2.0))
    world.sim.script(MANAGER_PHONES[1], Behaviour.voicemail_after(2.0))
    lead = await world.submit(VISITOR)
    done = await world.until_status(lead.id, "missed")
    assert VISITOR not in [d.to for d in world.sim.dialed]
    assert done.outcome == "no manager answered"
    await world.runtime.close()


async def test_wrong_key_does_not_connect(database_url: str) -> None:
    world = await make_world(database_url, managers=1)
    await world.engine.start()
    world.sim.script(MANAGER_PHONES[0], Behaviour.answers(after=2.0, presses="2"))
    lead = await world.submit(VISITOR)
    await world.until_status(lead.id, "missed")
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0]]
    await world.runtime.close()


async def test_visitor_who_never_answers_is_retried_then_unreachable(world: World) -> None:
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.presses_1(after=2.0))
    world.sim.script(VISITOR, Behaviour.never_answers())
    lead = await world.submit(VISITOR)
    started = world.clock.now()
    done = await world.until_status(lead.id, "unreachable")
    visitor_dials = [d for d in world.sim.dialed if d.to == VISITOR]
    assert len(visitor_dials) == 3  # the first attempt and two retries
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(visitor_dials, visitor_dials[1:], strict=False)]
    assert all(gap >= 180 for gap in gaps)
    assert done.attempt == 3
    assert (done.ended_at - started).total_seconds() < 15 * 60  # type: ignore[operator]


async def test_a_manager_is_never_rung_for_two_leads_at_once(world: World) -> None:
    # Eight leads at once for three managers: one never answers, so every lead passes two managers in
    # turn; one visitor never answers, so their manager is hung up on and the lead comes back later.
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=3.0, talk_for=60))
    world.sim.script(MANAGER_PHONES[1], Behaviour.never_answers())
    world.sim.script(MANAGER_PHONES[2], Behaviour.presses_1(after=5.0, talk_for=60))
    visitors = [f"+4850123456{i}" for i in range(8)]
    for i, phone in enumerate(visitors):
        world.sim.script(phone, Behaviour.never_answers() if i == 3 else Behaviour.answers(after=2, talk_for=30 + 5 * i))
    started = world.clock.now()
    leads = [await world.submit(phone) for phone in visitors]
    for lead in leads:
        await world.until_status(lead.id, "completed", "unreachable", limit=7200)

    # The simulated network's own record: each manager's phone has at most one call at any moment, from
    # the moment it is dialed until it hangs up.
    for phone in MANAGER_PHONES:
        calls = world.sim.calls_to(phone)
        assert len(calls) >= 3  # each was rung for many leads in turn
        for earlier, later in zip(calls, calls[1:], strict=False):
            assert earlier.ended_at is not None and earlier.ended_at <= later.placed_at, (
                f"{phone} rung for leg {later.request.leg_id} at {later.placed_at:%H:%M:%S} while its call "
                f"for leg {earlier.request.leg_id} lasted until {earlier.ended_at and f'{earlier.ended_at:%H:%M:%S}'}"
            )
    async with world.runtime.sessions() as session:
        first_rings = await session.execute(
            select(func.min(CallLeg.created_at)).where(CallLeg.role == "manager").group_by(CallLeg.lead_id)
        )
        waited = [at for at in first_rings.scalars() if (at - started).total_seconds() >= 30]
    assert len(waited) >= 3  # the queue was used: some waited a while before any manager was free for them


async def test_restart_mid_hunt_dials_no_step_twice(database_url: str) -> None:
    first = await make_world(database_url)
    script_hunt(first.sim)
    first.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=30))
    await first.engine.start()
    lead = await first.submit(VISITOR)
    await first.clock.advance(25)  # manager 1 gave up, manager 2's voicemail is on the line
    assert [d.to for d in first.sim.dialed] == list(MANAGER_PHONES[:2])
    await first.engine.stop()

    await first.clock.advance(40)  # the network goes on without us; its reports wait
    second = first.runtime.engine.__class__(
        first.runtime.sessions, first.sim, first.clock, first.runtime.broadcast, poll_interval=None
    )
    await second.start()
    await first.until_status(lead.id, "completed")
    legs_by_step = Counter(d.leg_id for d in first.sim.dialed)
    assert max(legs_by_step.values()) == 1
    assert [d.to for d in first.sim.dialed] == [*MANAGER_PHONES, VISITOR]
    await second.stop()
    await first.runtime.close()


class Crash(Exception):
    pass


async def test_a_dial_interrupted_by_a_crash_is_looked_up_not_repeated(database_url: str) -> None:
    world = await make_world(database_url, managers=1)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2.0))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=20))
    lead = await world.submit(VISITOR)
    # Crash between writing the step and hearing back from the provider: the call went out, but the
    # engine never stored its id.
    real_place = world.sim.place_call

    async def place_then_crash(request):  # type: ignore[no-untyped-def]
        await real_place(request)
        raise Crash  # the engine's work ends here, as if its process had died

    world.sim.place_call = place_then_crash  # type: ignore[method-assign]
    await world.engine.start()
    await world.clock.advance(0)
    await world.engine.stop()
    world.sim.place_call = real_place  # type: ignore[method-assign]
    await world.engine.start()
    await world.until_status(lead.id, "completed")
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], VISITOR]
    await world.runtime.close()


async def test_every_lead_reaches_a_terminal_state(world: World) -> None:
    behaviours = [
        Behaviour.never_answers(),
        Behaviour.busy_line(),
        Behaviour.voicemail_after(3),
        Behaviour.presses_1(after=5, talk_for=40),
        Behaviour.answers(after=30),  # past the ring timeout
    ]
    for i, phone in enumerate(MANAGER_PHONES):
        world.sim.script(phone, behaviours[i % len(behaviours)])
    world.sim.script(MANAGER_PHONES[2], Behaviour.presses_1(after=4, talk_for=40))
    visitors = [Behaviour.never_answers(), Behaviour.busy_line(), Behaviour.answers(after=2, talk_for=30)]
    leads = []
    for i in range(9):
        phone = f"+4860012345{i}"
        world.sim.script(phone, visitors[i % 3])
        leads.append(await world.submit(phone))
    terminal = ("completed", "missed", "unreachable")
    for lead in leads:
        await world.until_status(lead.id, *terminal, limit=4 * 3600)
    statuses = Counter([(await world.lead(lead.id)).status for lead in leads])
    assert statuses["completed"] == 3 and statuses["unreachable"] == 6


async def test_call_back_now_rings_that_manager_first_then_the_visitor(world: World) -> None:
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())
    lead = await world.submit(VISITOR)
    await world.until_status(lead.id, "missed")
    world.sim.script(MANAGER_PHONES[2], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    before = len(world.sim.dialed)
    async with world.runtime.sessions() as session:
        third = (await session.execute(select(CallLeg.manager_id).where(CallLeg.to_number == MANAGER_PHONES[2]))).scalar()
    await world.engine.call_back_now(lead.id, third)
    done = await world.until_status(lead.id, "completed")
    assert [d.to for d in world.sim.dialed[before:]] == [MANAGER_PHONES[2], VISITOR]
    assert done.handled_at is not None


async def test_one_leads_failing_step_does_not_hold_up_the_others_in_its_batch(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    script_hunt(world.sim)
    # Accepted at the same instant: the queue orders them by id.
    first, second = sorted([await world.submit("+48501234502"), await world.submit("+48501234501")],
                           key=lambda lead: lead.id)
    real_view = views.lead_view

    def broken_for_second(lead, *args, **context):  # type: ignore[no-untyped-def]
        if lead.id == second.id:
            raise RuntimeError("a bug that only this lead meets")
        return real_view(lead, *args, **context)

    monkeypatch.setattr(views, "lead_view", broken_for_second)
    await world.clock.advance(0)  # both fall due together, so they are stepped in one batch
    assert (await world.lead(first.id)).status == "calling_manager"
    assert (await world.lead(second.id)).status == "queued"  # untouched: still due, nothing half-written
    monkeypatch.setattr(views, "lead_view", real_view)
    world.engine.nudge()  # the next look for due leads (each second, in a running engine) takes it
    await world.clock.advance(0)
    assert (await world.lead(second.id)).status == "calling_manager"
