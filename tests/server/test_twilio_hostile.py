"""Real calls through the `twilio` library against the stand-in's hostile network: callbacks held back,
repeated and lost; visitors whose voicemail answers; managers who hang up at the worst moment; a slow API.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dialer.core.events import LegAnswered, LegEnded, LegEvent
from dialer.core.machine import Policy
from dialer.reports.costs import Period, cost_report
from dialer.reports.filters import LeadFilter
from server import twilio_hooks
from tests.twilio_standin import Hostility, Person, TwilioStandIn
from tests.twilio_standin.ringback import MANAGER_PHONES, Line, eventually

# Seconds, compressed: the engine's own deadlines come in a few seconds when a callback is lost.
FAST = Policy(ring_timeout=5, whisper_seconds=3, grace=1, check_seconds=1, retry_delay=1, visitor_retries=1,
              connected_check=2)
TERMINAL = ("completed", "missed", "unreachable", "failed")


# Only the deadlines ask here: a connected call is not asked about again (reconciliation finds its end).
ASKING = Policy(ring_timeout=3, whisper_seconds=3, grace=1, check_seconds=1, retry_delay=1, visitor_retries=1,
                connected_check=3600)


def losing(line: Line, monkeypatch: pytest.MonkeyPatch, lost: Callable[[LegEvent], bool]) -> list[LegEvent]:
    """The engine never hears the webhooks' reports that `lost` picks (as if their requests had failed for
    good); what it learns by asking Twilio itself still reaches it. Returns the reports lost."""
    engine = line.runtime.engine
    heard = engine.on_provider_event
    dropped: list[LegEvent] = []

    async def on_provider_event(event: LegEvent) -> None:
        if lost(event):
            dropped.append(event)
        else:
            await heard(event)

    monkeypatch.setattr(engine, "on_provider_event", on_provider_event)  # the webhooks look it up each time
    return dropped


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(hostile=Hostility(seed=5)) as standin:
        yield standin


@pytest.fixture
async def line(twilio: TwilioStandIn, database_url: str) -> AsyncIterator[Line]:
    async with Line(twilio, database_url, policy=FAST, recording=False) as running:
        yield running


async def test_a_visitors_voicemail_is_retried_then_unreachable_never_talked(
    twilio: TwilioStandIn, line: Line
) -> None:
    for phone in MANAGER_PHONES:
        twilio.people[phone] = Person.pressing("1")
    visitor = "+48501230001"
    twilio.people[visitor] = Person.voicemail_box()
    lead = await line.request_callback(visitor)
    done = await line.until_status(lead["id"], *TERMINAL, timeout=60)
    assert done.status == "unreachable" and "voicemail" in (done.outcome or "")
    calls = twilio.network.calls_to(visitor)
    # Each attempt: answering machine detection ran, said machine, and the greeting was never bridged.
    assert [(c.answered_by, c.bridged) for c in calls] == [("machine_start", False)] * 2
    managers = [c for c in twilio.network.calls.values() if c.to in MANAGER_PHONES and c.pressed]
    await twilio.until_over(*managers)
    said = [c.heard[-1] for c in sorted(managers, key=lambda c: c.created)]
    assert said == ["The visitor's voicemail answered. We will try again in 1 minutes.",
                    "The visitor's voicemail answered. Goodbye."]
    visitor_legs = [leg for leg in await line.legs(lead["id"]) if leg.role == "visitor"]
    assert [(leg.end_reason, leg.answered_at) for leg in visitor_legs] == [("voicemail", None)] * 2
    assert sum("voicemail answered" in t for t in await line.timeline(lead["id"])) == 2
    # The cost page counts no connection for it.
    assert line.sessions is not None
    now = datetime.now(UTC)
    async with line.sessions() as session:
        report = await cost_report(session, LeadFilter(), Period("custom", now - timedelta(days=1),
                                                                 now + timedelta(days=1), "UTC"))
    assert (report.total.leads, report.total.connected, report.unreachable) == (1, 0, 1)


async def test_callbacks_reordered_repeated_and_lost_every_lead_ends_as_its_people_made_it(
    twilio: TwilioStandIn, line: Line
) -> None:
    rng = random.Random(5)
    twilio.people[MANAGER_PHONES[0]] = Person.pressing("1")
    twilio.people[MANAGER_PHONES[1]] = Person(presses="1", answer_after=3)
    # Hangs up in the middle of the conversation (people talk 60 s here).
    twilio.people[MANAGER_PHONES[2]] = Person(presses="1", hangs_up_after=40)
    expected: dict[str, str] = {}
    for i in range(24):
        phone = f"+485012{i:05d}"
        kind = rng.choice(["talks", "talks", "voicemail", "silent"])
        twilio.people[phone] = {"talks": Person(talk_for=60, answer_after=rng.uniform(0.5, 3)),
                                "voicemail": Person.voicemail_box(),
                                "silent": Person.never_answers()}[kind]
        expected[phone] = "completed" if kind == "talks" else "unreachable"
    leads = {}
    for phone in expected:
        leads[phone] = (await line.request_callback(phone))["id"]
    ended = {phone: await line.until_status(lead_id, *TERMINAL, timeout=150) for phone, lead_id in leads.items()}
    assert twilio.network.lost  # the network did lose callbacks
    assert {p: (lead.status, lead.outcome) for p, lead in ended.items() if lead.status != expected[p]} == {}
    for phone, lead in ended.items():
        assert (lead.outcome == "talked") is (expected[phone] == "completed")
        legs = await line.legs(lead.id)
        assert len({leg.step for leg in legs}) == len(legs)
        calls = twilio.network.calls_to(phone)
        # Never two calls for one visitor leg (a leg may have had none: its manager left before the Dial).
        assert len(calls) <= len([leg for leg in legs if leg.role == "visitor"])
        if expected[phone] == "completed":
            assert sum(c.bridged for c in calls) == 1


async def test_a_manager_who_hangs_up_while_the_visitor_rings_has_one_outcome(database_url: str) -> None:
    outcomes = set()
    for seed in range(4):
        with TwilioStandIn(hostile=Hostility(seed=seed), second=0.1) as twilio:
            async with Line(twilio, database_url, managers=1, policy=FAST, recording=False) as line:
                twilio.people[MANAGER_PHONES[0]] = Person.pressing("1", hangs_up_after=3)
                visitor = f"+4850123{seed:04d}"
                twilio.people[visitor] = Person(answer_after=4.5)  # still ringing when the manager leaves
                lead = await line.request_callback(visitor)
                done = await line.until_status(lead["id"], *TERMINAL, timeout=60)
                await eventually(lambda v=visitor: [m for m in twilio.network.messages if m[0] == v])  # type: ignore[misc]
                texts = [body.split(":")[1][:20] for to, _, body in twilio.network.messages if to == visitor]
                outcomes.add((done.status, done.outcome, tuple(texts)))
                await line.set_site(key=f"done{seed}")  # the next round has a shop of its own
    assert outcomes == {("missed", "the manager hung up before the visitor was connected", (" sorry, nobody could",))}


async def test_the_press_1_reply_is_the_dial_while_the_engine_is_busy_and_three_managers_ring(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TwilioStandIn(second=0.05) as twilio:
        async with Line(twilio, database_url, recording=False, provider_options={"timeout": 6.0}) as line:
            await line.set_site(routing="simultaneous")
            for phone in MANAGER_PHONES:
                twilio.people[phone] = Person(presses=None, answers=False, ring_for=30)
            twilio.people[MANAGER_PHONES[1]] = Person(presses="1", answer_after=15)  # picks up after 0.75 s
            # Hanging up the two other managers takes the API 5 s each; the Dial must not wait for them.
            twilio.faults.slow_update = 5.0
            lead = await line.request_callback()
            await eventually(lambda: all(twilio.network.calls_to(p) for p in MANAGER_PHONES))
            # Keep the engine busy meanwhile: leads keep arriving while the press is answered.
            await asyncio.gather(*(line.request_callback(f"+4850199{i:04d}") for i in range(30)))
            (winner,) = twilio.network.calls_to(MANAGER_PHONES[1])
            done = await line.until_status(lead["id"], "completed", timeout=60)
            assert done.outcome == "talked"
            press = next(p for p in twilio.network.posted if "/gather?" in p.url and p.params.get("CallSid") == winner.sid)
            reply = await eventually(lambda: twilio.network.replies.get(press.url))
            assert "<Dial" in reply and "Connecting you" not in reply
            assert twilio.network.calls_to("+48501234567")[0].parent_sid == winner.sid
            assert twilio_hooks.PRESS_DEADLINE < 15


async def test_a_lost_answer_does_not_cut_the_conversation_and_its_lost_end_is_reconciled_as_talked(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every webhook report of the visitor's answer and of the call's end is lost. The visitor deadline asks
    Twilio (GET /Calls/{sid}: in progress, a person detected) instead of hanging up; once they have
    hung up, reconciliation asks again and ends the lead as the conversation it was, with its length."""
    visitor = "+48501230002"
    with TwilioStandIn(second=0.02) as twilio:
        async with Line(twilio, database_url, managers=1, policy=ASKING, recording=False) as line:
            twilio.people[MANAGER_PHONES[0]] = Person.pressing("1")
            twilio.people[visitor] = Person(talk_for=400)  # 8 s: longer than the visitor deadline (4 s)

            def lost(event: LegEvent) -> bool:
                answer = isinstance(event, LegAnswered) and event.sid in {c.sid for c in twilio.network.calls_to(visitor)}
                return answer or isinstance(event, LegEnded)

            dropped = losing(line, monkeypatch, lost)
            lead = await line.request_callback(visitor)
            await line.until_status(lead["id"], "connected", timeout=30)
            (call,) = twilio.network.calls_to(visitor)
            await twilio.until_over(call, *twilio.network.calls_to(MANAGER_PHONES[0]))
            assert call.duration == 400  # nobody cut it: the visitor hung up after talking
            await eventually(lambda: [e for e in dropped if isinstance(e, LegEnded) and e.sid == call.sid])
            assert any(isinstance(e, LegAnswered) for e in dropped)
            assert (await line.lead(lead["id"])).status == "connected"  # its end went unreported
            reconciler = line.runtime.engine.reconciler
            assert line._server is not None
            await line._server.arun(lambda: reconciler.run_once(older_than=0))
            done = await line.until_status(lead["id"], *TERMINAL, timeout=30)
            assert (done.status, done.outcome) == ("completed", "talked")
            legs = {leg.role: leg for leg in await line.legs(lead["id"])}
            assert (legs["visitor"].end_reason, legs["visitor"].duration) == ("completed", 400)
            assert legs["manager"].status == "ended"
            timeline = await line.timeline(lead["id"])
            assert any("asking it how the calls stand" in t for t in timeline)


async def test_a_voicemail_found_by_asking_is_voicemail_never_talked(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every report of how the calls ended is lost (the screen's machine verdict, the Dial action, the
    manager's status callback): at the visitor deadline Twilio is asked, and its call resource's
    `answered_by` (machine_start on a call `completed`) makes the visitor's leg voicemail, not a talk."""
    visitor = "+48501230003"
    with TwilioStandIn(second=0.02) as twilio:
        async with Line(twilio, database_url, managers=1, policy=ASKING, recording=False) as line:
            twilio.people[MANAGER_PHONES[0]] = Person.pressing("1")
            twilio.people[visitor] = Person.voicemail_box()
            dropped = losing(line, monkeypatch, lambda event: isinstance(event, LegEnded))
            lead = await line.request_callback(visitor)
            done = await line.until_status(lead["id"], *TERMINAL, timeout=60)
            assert done.status == "unreachable" and "voicemail" in (done.outcome or ""), done.outcome
            assert [(c.answered_by, c.bridged) for c in twilio.network.calls_to(visitor)] == [("machine_start", False)] * 2
            visitor_legs = [leg for leg in await line.legs(lead["id"]) if leg.role == "visitor"]
            assert [(leg.end_reason, leg.answered_at) for leg in visitor_legs] == [("voicemail", None)] * 2
            assert any(e.reason == "voicemail" for e in dropped if isinstance(e, LegEnded))  # the webhooks' word, lost
