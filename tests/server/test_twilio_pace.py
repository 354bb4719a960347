"""Many calls due at once against an account's calls-per-second pace: Ringback's pacer, the stand-in's queue.

Twilio starts REST-created calls at the account's calls per second (1 by default) and queues the rest
(tests/twilio_standin/pace.py cites the documents). A morning of scheduled callbacks falling due together
must still ring every manager before their deadline counts, end no lead `missed` unrung, dial nobody
twice. The stand-in's time and the engine's clock run `SPEED` times faster than real time.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from dialer.clock import SystemClock
from dialer.db.models import CallLeg, Lead, LeadEvent
from tests.harness.morning import due_together as seed_morning
from tests.twilio_standin import Pace, Person, TwilioStandIn
from tests.twilio_standin.network import SECOND
from tests.twilio_standin.ringback import CALLER_ID, Line, eventually

SPEED = 5.0  # stand-in and engine seconds per real second
LEADS = 120
CPS = 1.0


def paced(second: float) -> Iterator[TwilioStandIn]:
    pace = Pace(calls_per_second=CPS, concurrent_requests=10, speed=SPEED, latency=0.005)
    with TwilioStandIn(price_lag=0, pace=pace, second=second) as standin:
        yield standin


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    # The calls too run SPEED times faster than real time: a manager put on hold (the reply to their key
    # press late, the engine busy) waits a minute of the engine's time, not a hundredth of it.
    yield from paced(1 / SPEED)


@pytest.fixture
def quick_twilio() -> Iterator[TwilioStandIn]:
    yield from paced(SECOND)


@pytest.fixture
async def line(twilio: TwilioStandIn, database_url: str) -> AsyncIterator[Line]:
    clock = SystemClock(SPEED)
    async with Line(twilio, database_url, managers=3, recording=False, clock=clock, calls_per_second=CPS,
                    provider_options={"price_delays": (0.05,) * 10}) as running:
        yield running


async def due_together(line: Line, count: int) -> tuple[datetime, list[str]]:
    """`count` scheduled callbacks, on sites of three managers each, all due at one moment."""
    assert line.sessions is not None
    morning = await seed_morning(line.sessions, line.runtime.clock.now(), count, CALLER_ID)
    for phone in morning.visitors:
        line.twilio.people[phone] = Person(talk_for=5)  # a short talk: the last ends soon after
    await line._server.arun(_nudge(line))  # type: ignore[union-attr]
    return morning.due, morning.lead_ids


def _nudge(line: Line):  # type: ignore[no-untyped-def]
    async def nudge() -> None:
        line.runtime.engine.nudge()

    return nudge


async def test_a_morning_of_callbacks_due_at_once_rings_every_manager_in_time(
    twilio: TwilioStandIn, line: Line
) -> None:
    due, ids = await due_together(line, LEADS)
    assert line.sessions is not None

    async def all_over() -> list[Lead] | None:
        async with line.sessions() as session:  # type: ignore[misc]
            leads = list((await session.execute(select(Lead).where(Lead.id.in_(ids)))).scalars())
        return leads if all(lead.ended_at is not None for lead in leads) else None

    try:
        leads = await eventually(all_over, timeout=(LEADS / CPS) / SPEED * 6 + 30)
    except AssertionError:
        async with line.sessions() as session:
            statuses = list((await session.execute(select(Lead.status).where(Lead.id.in_(ids)))).scalars())
        raise AssertionError(f"not all over: {sorted((s, statuses.count(s)) for s in set(statuses))}") from None
    async with line.sessions() as session:
        legs = list((await session.execute(select(CallLeg).where(CallLeg.lead_id.in_(ids)))).scalars())
        lines = list((await session.execute(
            select(LeadEvent).where(LeadEvent.lead_id.in_(ids)).order_by(LeadEvent.id))).scalars())

    network, pace = twilio.network, twilio.pace
    managers = [leg for leg in legs if leg.role == "manager"]
    rang = {p.params["CallSid"] for p in network.posted if p.params.get("CallStatus") == "ringing"}
    by_number: dict[str, int] = {}
    for call in network.calls.values():
        by_number[call.to] = by_number.get(call.to, 0) + 1

    outcomes = sorted({(lead.status, lead.outcome) for lead in leads})
    # Every manager call rang before our deadline could count: none was hung up by it unrung (still
    # waiting for its turn, here or in Twilio's queue), none cancelled in Twilio's queue.
    assert [leg.id for leg in managers if leg.end_reason == "timeout" and leg.provider_sid not in rang] == []
    assert pace.cancelled_in_queue == set() and all(leg.provider_sid in rang for leg in managers)
    # No lead ended missed (or failed) without a manager's phone having rung.
    rung_leads = {leg.lead_id for leg in managers if leg.provider_sid in rang}
    assert all(lead.status == "completed" or lead.id in rung_leads for lead in leads), outcomes
    assert {status for status, _ in outcomes} <= {"completed", "missed"}
    # Nobody dialed twice: one call per manager leg, at most one per visitor (once per talked lead).
    assert all(by_number.get(lead.phone, 0) == (1 if lead.status == "completed" else 0) for lead in leads)
    assert sum(1 for c in network.calls.values() if c.parent_sid is None) == len(managers)
    assert len({leg.provider_sid for leg in managers}) == len(managers)
    # Twilio ends what our own deadlines could not: every call carries the time limit.
    assert {c.dial_attrs.get("timeLimit") for c in network.calls.values() if c.parent_sid} == {"14400"}
    assert {f.get("TimeLimit") for f in twilio.faults.created.values()} == {str(14400 + 120)}

    # The first word that a manager's phone rang: its "ringing" line, or "answered" or "pressed" when the
    # status callbacks (sent apart from the call, as Twilio does) came after the key press's webhook, and
    # the late "ringing" changed nothing.
    first_ring: dict[str, datetime] = {}
    for event in lines:
        if event.kind == "leg" and event.detail.startswith("manager") and (event.detail.endswith((": ringing", ": answered")) or ": pressed" in event.detail):
            first_ring.setdefault(event.lead_id, event.at)
    waits = sorted((first_ring[i] - due).total_seconds() for i in ids)
    p50, p99 = statistics.median(waits), waits[min(len(waits) - 1, int(len(waits) * 0.99))]
    print(f"\n{LEADS} leads due at once, {CPS:g} call/s: due to first ring p50 {p50:.1f} s, p99 {p99:.1f} s "
          f"(the pace's own minimum for the last: n / cps = {LEADS / CPS:.0f} s); "
          f"Twilio's queue_time at most {max(pace.queue_times.values()) / 1000:.1f} s, "
          f"{pace.refused} requests refused with 20429, {pace.most_in_flight} in flight at most; "
          f"outcomes {outcomes}, {len(managers)} manager calls")
    assert waits[-1] >= (LEADS - 1) / CPS * 0.9  # paced for real: the last call did wait its turn
    # Ringback held the calls back itself: Twilio's own queue never grew (a cancelled lead's call is never
    # left waiting there, and several processes together keep to the account's pace).
    # (Without Ringback's pacer the last waits there about n / cps: 115 s in this test.)
    assert max(pace.queue_times.values()) <= 0.15 * LEADS / CPS * 1000


@pytest.fixture
async def fast_line(quick_twilio: TwilioStandIn, database_url: str) -> AsyncIterator[Line]:
    async with Line(quick_twilio, database_url, managers=1, recording=False, clock=SystemClock(20.0),
                    calls_per_second=CPS, poll_interval=0.05) as running:
        yield running


async def test_a_rate_limit_that_does_not_let_up_puts_the_call_back_and_never_fails_the_lead(
    quick_twilio: TwilioStandIn, fast_line: Line
) -> None:
    line, twilio = fast_line, quick_twilio
    twilio.faults.create_errors = [(429, 20429)] * 3  # every attempt of the first try refused
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], "completed", "failed", "missed", timeout=60)
    assert (done.status, done.outcome) == ("completed", "talked")
    manager = (await line.legs(lead["id"]))[0]
    assert manager.end_reason == "completed" and manager.accepted
    assert [r for r in twilio.faults.requests if r == ("POST", "Calls.json")] == [("POST", "Calls.json")] * 4
