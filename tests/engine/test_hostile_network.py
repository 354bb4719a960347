"""The engine on the simulator's hostile network: status callbacks held back, repeated and lost (seeded),
visitors whose voicemail answers, managers who hang up at the worst moment. Every lead still ends the way
the people it called make it end."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import select

from dialer.clock import ManualClock
from dialer.core.events import LegAnswered, LegEnded, LegEvent
from dialer.core.machine import Policy
from dialer.db.models import CallLeg, Lead, LeadEvent
from dialer.telephony.sim_scripts import Hostility
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from tests.conftest import MANAGER_PHONES, World, make_world
from tests.harness.world import add_shop, build_runtime

POLICY = Policy(retry_delay=120, visitor_retries=1, connected_check=120)
TERMINAL = ("completed", "missed", "unreachable", "failed", "cancelled", "rejected")


async def hostile_world(
    database_url: str, seed: int, managers: int = 3, hostility: Hostility | None = None, **site: object
) -> World:
    clock = ManualClock()
    sim = SimulatedProvider(clock, seed=seed, hostile=hostility or Hostility())
    runtime = build_runtime(database_url, clock=clock, provider=sim, policy=POLICY)
    async with runtime.sessions() as session, session.begin():
        shop = await add_shop(session, now=clock.now(), managers=managers, **site)  # type: ignore[arg-type]
    world = World(runtime, clock, sim, shop)
    await world.engine.start()
    return world


def losing(world: World, lost: Callable[[LegEvent], bool]) -> list[LegEvent]:
    """The engine never hears the simulator's reports that `lost` picks (even those Twilio waits on: as if
    their webhooks had failed for good); what it learns by asking still reaches it. Returns those lost."""
    dropped: list[LegEvent] = []

    async def sink(event: LegEvent) -> None:
        if lost(event):
            dropped.append(event)
        else:
            await world.engine.on_provider_event(event)

    world.sim.attach(sink)
    return dropped


async def legs_of(world: World, lead_id: str) -> list[CallLeg]:
    async with world.runtime.sessions() as session:
        query = select(CallLeg).where(CallLeg.lead_id == lead_id).order_by(CallLeg.created_at, CallLeg.step)
        return list((await session.execute(query)).scalars())


async def timeline(world: World, lead_id: str) -> list[str]:
    async with world.runtime.sessions() as session:
        query = select(LeadEvent.detail).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)
        return list((await session.execute(query)).scalars())


async def test_a_visitors_voicemail_is_retried_then_unreachable_never_talked(database_url: str) -> None:
    world = await hostile_world(database_url, seed=3, managers=1)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    visitor = "+48501230001"
    world.sim.script(visitor, Behaviour.voicemail_after(3))
    lead = await world.submit(visitor)
    done = await world.until_status(lead.id, *TERMINAL)
    assert done.status == "unreachable" and done.outcome is not None and "voicemail" in done.outcome
    legs = [leg for leg in await legs_of(world, lead.id) if leg.role == "visitor"]
    assert [(leg.end_reason, leg.answered_at) for leg in legs] == [("voicemail", None)] * 2
    assert any("voicemail answered" in line for line in await timeline(world, lead.id))
    assert [text.body for text in world.sim.texts][-1].startswith("Shop: we tried to call you back")
    await world.runtime.close()


def _script(world: World, rng: random.Random, n: int) -> dict[str, str]:
    """`n` visitors, each a person who talks, a voicemail or a phone nobody picks up; what each lead must
    end as."""
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=4))
    # Hangs up a minute after pressing 1: always in the middle of the conversation (people talk 90 s),
    # never before a visitor who does not answer has rung out.
    world.sim.script(MANAGER_PHONES[2], Behaviour(answer_after=3, presses="1", hangs_up_after=60))
    expected = {}
    for i in range(n):
        phone = f"+485012{i:05d}"
        kind = rng.choice(["talks", "talks", "voicemail", "silent"])
        if kind == "talks":
            world.sim.script(phone, Behaviour.answers(after=rng.uniform(1, 8), talk_for=90))
            expected[phone] = "completed"
        elif kind == "voicemail":
            world.sim.script(phone, Behaviour.voicemail_after(rng.uniform(1, 8)))
            expected[phone] = "unreachable"
        else:
            world.sim.script(phone, Behaviour.never_answers())
            expected[phone] = "unreachable"
    return expected


@pytest.mark.sqlite_only  # a couple of minutes of simulated load; the database is not what it tests
async def test_hundreds_of_leads_on_a_hostile_network_all_end_as_their_people_made_them(database_url: str) -> None:
    # Harsher still: a third of the callbacks lost, and no Dial action once a manager hung up mid-call.
    world = await hostile_world(database_url, seed=11, hostility=Hostility(lose=0.3, action_after_hangup=0.0))
    rng = random.Random(11)
    expected = _script(world, rng, 100)
    leads = {}
    for phone in expected:
        leads[phone] = (await world.submit(phone)).id
        await world.clock.advance(rng.uniform(20, 40))  # about what three managers can take

    async def all_over() -> bool:
        async with world.runtime.sessions() as session:
            statuses = (await session.execute(select(Lead.status).where(Lead.id.in_(leads.values())))).scalars()
            return all(status in TERMINAL for status in statuses)

    await world.clock.run_until(all_over, limit=48 * 3600)
    assert world.sim.lost > 0  # the network did lose callbacks
    async with world.runtime.sessions() as session:
        found = {lead.phone: lead for lead in (await session.execute(select(Lead))).scalars()}
    wrong = {phone: (found[phone].status, found[phone].outcome) for phone, status in expected.items()
             if found[phone].status != status}
    assert wrong == {}
    for phone, status in expected.items():
        lead = found[phone]
        assert (lead.outcome == "talked") is (status == "completed"), (phone, lead.outcome)
        legs = await legs_of(world, lead.id)
        visitors = [leg for leg in legs if leg.role == "visitor"]
        # Never dialed twice for one step, and a voicemail never counted as an answer.
        assert len({leg.step for leg in legs}) == len(legs)
        if status == "unreachable":
            assert all(leg.answered_at is None for leg in visitors) and len(visitors) == 2
        else:  # the conversation's end was known when it came, lost callbacks or not (they talk 90 s)
            assert [leg.duration is not None and leg.duration <= 95 for leg in visitors if leg.answered_at] == [True]
    dialed = Counter((d.leg_id) for d in world.sim.dialed)
    assert max(dialed.values()) == 1  # every leg dialed once
    await world.runtime.close()


async def test_a_manager_who_hangs_up_while_the_visitor_rings_has_one_outcome_whatever_the_order(
    database_url: str,
) -> None:
    outcomes = set()
    for seed in range(12):
        world = await hostile_world(database_url, seed=seed, managers=1, key=f"shop{seed}")
        world.sim.script(MANAGER_PHONES[0][:-3] + "9" + MANAGER_PHONES[0][-2:],
                         Behaviour.presses_1_then_hangs_up(after=2, hangs_up_after=1))
        visitor = f"+4850123{seed:04d}"
        world.sim.script(visitor, Behaviour.answers(after=10))
        lead = await world.submit(visitor)
        done = await world.until_status(lead.id, *TERMINAL)
        texts = [t.body for t in world.sim.texts if t.to == visitor]
        outcomes.add((done.status, done.outcome, tuple(t.split(":")[1][:20] for t in texts)))
        await world.runtime.close()
    assert outcomes == {("missed", "the manager hung up before the visitor was connected", (" sorry, nobody could",))}


async def test_a_lost_answer_does_not_cut_the_conversation_at_the_visitor_deadline(database_url: str) -> None:
    world = await make_world(database_url, managers=1, policy=POLICY)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    visitor = "+48501230004"
    world.sim.script(visitor, Behaviour.answers(after=3, talk_for=300))  # far past the visitor deadline (30 s)
    await world.engine.start()
    dropped = losing(world, lambda e: isinstance(e, LegAnswered) and e.sid in {c.sid for c in world.sim.calls_to(visitor)})
    lead = await world.submit(visitor)
    done = await world.until_status(lead.id, *TERMINAL)
    assert dropped  # the answer was never heard
    assert (done.status, done.outcome) == ("completed", "talked")
    (call,) = world.sim.calls_to(visitor)
    assert call.ended_at_s == 300  # the visitor hung up after talking: nobody cut them off
    (leg,) = [leg for leg in await legs_of(world, lead.id) if leg.role == "visitor"]
    assert (leg.end_reason, leg.duration) == ("completed", 300)
    assert any("asking it how the calls stand" in line for line in await timeline(world, lead.id))
    await world.runtime.close()


async def test_a_voicemail_found_by_asking_is_voicemail_never_talked(database_url: str) -> None:
    world = await make_world(database_url, managers=1, policy=POLICY)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    visitor = "+48501230005"
    world.sim.script(visitor, Behaviour.voicemail_after(3))
    await world.engine.start()
    dropped = losing(world, lambda e: isinstance(e, LegEnded) and e.sid in {c.sid for c in world.sim.calls_to(visitor)})
    lead = await world.submit(visitor)
    done = await world.until_status(lead.id, *TERMINAL)
    assert len(dropped) == 2  # each attempt's voicemail, never reported
    assert done.status == "unreachable" and "voicemail" in (done.outcome or ""), done.outcome
    legs = [leg for leg in await legs_of(world, lead.id) if leg.role == "visitor"]
    assert [(leg.end_reason, leg.answered_at) for leg in legs] == [("voicemail", None)] * 2
    assert all("answering machine detection: machine_start" in (leg.end_detail or "") for leg in legs)
    await world.runtime.close()


async def test_a_manager_who_hangs_up_between_the_visitors_answer_and_the_bridge_never_makes_a_talk(
    database_url: str,
) -> None:
    # The screen's "a person", the manager's end said in the Dial, their status callback (held back,
    # repeated or lost) and the visitor's end (the Dial action, or, when it is never requested, asked
    # for) come in whichever order the seed gives: the first manager never made a talk, the second does.
    outcomes, unreported = set(), 0
    for seed in range(8):
        world = await hostile_world(database_url, seed=seed, managers=2, key=f"bridge{seed}")
        first, second = (phone[:-3] + "9" + phone[-2:] for phone in MANAGER_PHONES[:2])
        world.sim.script(first, Behaviour(answer_after=2, presses="1", hangs_up_at_bridge=True))
        world.sim.script(second, Behaviour.presses_1(after=2, talk_for=90))
        visitor = f"+4850124{seed:04d}"
        world.sim.script(visitor, Behaviour.answers(after=3, talk_for=60))
        lead = await world.submit(visitor)
        done = await world.until_status(lead.id, *TERMINAL)
        calls = world.sim.calls_to(visitor)
        unreported += calls[0].unreported
        legs = [leg for leg in await legs_of(world, lead.id) if leg.role == "visitor"]
        lines = await timeline(world, lead.id)
        outcomes.add((done.status, done.outcome, [c.connected for c in calls] == [False, True],
                      legs[0].end_reason, "the manager hung up before the visitor was connected" in lines,
                      sum("talked" in line for line in lines)))
        await world.runtime.close()
    assert outcomes == {("completed", "talked", True, "canceled", True, 1)}
    assert unreported  # some runs learnt the visitor's end only by asking
