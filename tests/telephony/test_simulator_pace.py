"""The simulator's account keeps Twilio's pace: REST-created calls leave its queue at the account's calls
per second (the create says how long they wait, `initiated` says when they leave), `<Dial>` legs are not
paced, a call cancelled in the queue never rings, too many creates at once are refused with 20429
(dialer/telephony/account.py cites the documents). And a morning of 120 callbacks due at once, at 1 call
per second, rings every manager before their deadline counts, on the manual clock (seconds, not minutes),
with status callbacks held back, repeated and lost.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import select

from dialer.clock import ManualClock
from dialer.core.events import LegEvent, LegInitiated, LegRinging
from dialer.core.states import LegRole
from dialer.db.models import CallLeg, Lead, LeadEvent
from dialer.runtime import Runtime
from dialer.telephony.base import CallRequest, PlacedCall, ProviderError
from dialer.telephony.sim_scripts import Hostility
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from tests.harness.morning import due_together as seed_morning
from tests.harness.world import build_runtime

LEADS = 120
CPS = 1.0


def manager(leg: str, to: str) -> CallRequest:
    return CallRequest(leg_id=leg, to=to, role=LegRole.MANAGER, timeout=20, caller_id="+12025550100")


async def test_creates_wait_their_turn_in_the_accounts_queue_and_dial_legs_do_not() -> None:
    clock = ManualClock()
    sim = SimulatedProvider(clock, calls_per_second=2.0)
    seen: list[tuple[float, LegEvent]] = []
    start = clock.now()

    async def sink(event: LegEvent) -> None:
        seen.append(((clock.now() - start).total_seconds(), event))

    sim.attach(sink)
    for n in range(4):
        sim.script(f"+1202555020{n}", Behaviour.never_answers())
    placed = [await sim.place_call(manager(f"m{n}", f"+1202555020{n}")) for n in range(4)]
    assert [p.queue_seconds for p in placed if isinstance(p, PlacedCall)] == [0.0, 0.5, 1.0, 1.5]
    # The visitor, dialed from inside the first manager's call, goes at once, whatever waits in the queue.
    visitor = CallRequest(leg_id="v0", to="+48501230000", role=LegRole.VISITOR, timeout=20,
                          bridge_sid=placed[0], bridge_leg_id="m0")
    dialed = await sim.place_call(visitor)
    assert isinstance(dialed, PlacedCall) and dialed.queue_seconds == 0.0
    await sim.hangup(str(placed[3]))  # cancelled while it waits: it never rings
    await clock.advance(5)

    initiated = {e.leg_id: at for at, e in seen if isinstance(e, LegInitiated)}
    rang = {e.leg_id: at for at, e in seen if isinstance(e, LegRinging)}
    assert initiated == {"m0": 0.0, "m1": 0.5, "m2": 1.0}  # the account's pace: 2 calls per second
    assert rang == {"m0": 1.0, "m1": 1.5, "m2": 2.0, "v0": 1.0}  # each rings once it has left the queue
    assert sim.cancelled_in_queue == {placed[3]} and sim.queue.waiting == 0


async def test_too_many_creates_at_once_are_refused_as_twilio_refuses_them() -> None:
    clock = ManualClock()
    sim = SimulatedProvider(clock, calls_per_second=1.0, concurrent_requests=2)
    creates = [asyncio.ensure_future(sim.place_call(manager(f"m{n}", f"+1202555030{n}"))) for n in range(3)]
    results = await asyncio.gather(*creates, return_exceptions=True)
    refused = [r for r in results if isinstance(r, ProviderError)]
    # The third was refused unprocessed (20429): a rate limit the engine puts back, never the lead's failure.
    assert [(r.code, r.rate_limited, r.permanent) for r in refused] == [("20429", True, False)]
    assert len(sim.calls_to("+12025550302")) == 0 and sim.requests.refused == 1


async def due_together(runtime: Runtime, clock: ManualClock, sim: SimulatedProvider) -> tuple[datetime, list[str]]:
    """LEADS scheduled callbacks on sites of three managers each, all due at one moment."""
    morning = await seed_morning(runtime.sessions, clock.now(), LEADS, "+12025550100")
    for phone in morning.managers:
        sim.script(phone, Behaviour.presses_1(after=3, talk_for=30))
    for phone in morning.visitors:
        sim.script(phone, Behaviour.answers(after=3, talk_for=30))
    return morning.due, morning.lead_ids


@pytest.mark.sqlite_only  # a simulated morning of 120 leads: the database is not what it tests
@pytest.mark.parametrize("ringback_paces", [True, False], ids=["ringback-paces", "only-twilios-queue"])
async def test_a_morning_of_callbacks_due_at_once_rings_every_manager_in_time(
    database_url: str, ringback_paces: bool
) -> None:
    clock = ManualClock()
    # Twilio's default pace, ten REST requests in flight at most, and status callbacks (`initiated` among
    # them) held back, repeated and lost.
    sim = SimulatedProvider(clock, seed=5, calls_per_second=CPS, concurrent_requests=10, hostile=Hostility())
    runtime = build_runtime(database_url, clock=clock, provider=sim, poll_interval=1.0)
    if not ringback_paces:
        # Ringback's pacer out of the picture (another program creating calls on the account, or a
        # TWILIO_CALLS_PER_SECOND above the account's real pace): every create goes at once, the calls
        # wait in the account's queue, and the deadline must count from `queue_time` and `initiated`.
        runtime.engine.dialer.pacer = None
    try:
        await runtime.engine.start()
        due, ids = await due_together(runtime, clock, sim)
        await clock.advance(2)
        runtime.engine.nudge()

        async def all_over() -> bool:
            async with runtime.sessions() as session:
                ended = (await session.execute(select(Lead.ended_at).where(Lead.id.in_(ids)))).scalars()
                return all(at is not None for at in ended)

        await clock.run_until(all_over, limit=3600)
        async with runtime.sessions() as session:
            leads = list((await session.execute(select(Lead).where(Lead.id.in_(ids)))).scalars())
            legs = list((await session.execute(select(CallLeg).where(CallLeg.lead_id.in_(ids)))).scalars())
            lines = list((await session.execute(
                select(LeadEvent).where(LeadEvent.lead_id.in_(ids)).order_by(LeadEvent.id))).scalars())
    finally:
        await runtime.close()

    managers = [leg for leg in legs if leg.role == "manager"]
    calls = {c.sid: c for phone in {leg.to_number for leg in managers} for c in sim.calls_to(phone)}
    rang = {sid for sid, call in calls.items() if call.ringing}
    outcomes = sorted(Counter((lead.status, lead.outcome) for lead in leads).items())
    # Every manager call rang before our deadline could count: none hung up by it unrung (still waiting
    # for its turn, in our pacer or the account's queue), none cancelled in the account's queue.
    assert [leg.id for leg in managers if leg.end_reason == "timeout" and leg.provider_sid not in rang] == []
    assert sim.cancelled_in_queue == set() and all(leg.provider_sid in rang for leg in managers)
    # No lead ended missed (or failed) without a manager's phone having rung.
    rung_leads = {leg.lead_id for leg in managers if leg.provider_sid in rang}
    assert all(lead.status == "completed" or lead.id in rung_leads for lead in leads), outcomes
    assert {status for (status, _), _ in outcomes} <= {"completed", "missed"}, outcomes
    # Nobody dialed twice: every leg once, each visitor at most once (once per talked lead).
    dialed = Counter(d.leg_id for d in sim.dialed)
    assert set(dialed.values()) == {1}
    by_number = Counter(d.to for d in sim.dialed)
    assert all(by_number[lead.phone] == (1 if lead.status == "completed" else 0) for lead in leads)

    # The first word that a manager's phone rang (its "ringing" line, or "answered"/"pressed" first).
    first_ring: dict[str, datetime] = {}
    for event in lines:
        if event.kind == "leg" and event.detail.startswith("manager") and (
                event.detail.endswith((": ringing", ": answered")) or ": pressed" in event.detail):
            first_ring.setdefault(event.lead_id, event.at)
    waits = sorted((first_ring[i] - due).total_seconds() for i in ids)
    p50, p99 = statistics.median(waits), waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    who = "Ringback paces" if ringback_paces else "only the account's queue paces"
    print(f"\n{LEADS} leads due at once, {CPS:g} call/s ({who}): due to first ring p50 {p50:.1f} s, p99 {p99:.1f} s (the pace's own minimum "
          f"for the last: n / cps = {LEADS / CPS:.0f} s); queue_time at most {max(sim.queue_times.values()):.1f} s, "
          f"{sim.requests.refused} creates refused with 20429; outcomes {outcomes}, {len(managers)} manager calls")
    assert waits[-1] >= (LEADS - 1) / CPS * 0.9  # paced for real: the last call did wait its turn
    if ringback_paces:
        # Ringback held the calls back itself: the account's queue never grew.
        assert max(sim.queue_times.values()) <= 1.0 / CPS
