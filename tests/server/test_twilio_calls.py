"""Real calls through the `twilio` library, against the local stand-in of Twilio's API and network."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from dialer.db.models import CallLeg
from tests.twilio_standin import Person, TwilioStandIn
from tests.twilio_standin.ringback import CALLER_ID, MANAGER_PHONES, VISITOR, Line, eventually


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(price_lag=2) as standin:
        yield standin


@pytest.fixture
async def line(twilio: TwilioStandIn, database_url: str) -> AsyncIterator[Line]:
    async with Line(twilio, database_url) as running:
        yield running


def script_hunt(twilio: TwilioStandIn) -> None:
    twilio.people[MANAGER_PHONES[0]] = Person.never_answers()
    twilio.people[MANAGER_PHONES[1]] = Person.voicemail_box()
    twilio.people[MANAGER_PHONES[2]] = Person.pressing("1")


async def test_the_full_hunt_ends_in_a_bridged_recorded_priced_call(twilio: TwilioStandIn, line: Line) -> None:
    script_hunt(twilio)
    twilio.people[VISITOR] = Person(talk_for=95)
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], "completed")
    assert done.outcome == "talked"

    # Prices come late; they are fetched until Twilio fills them in, and stored per leg.
    async def priced() -> list[Decimal] | None:
        prices = [leg.price for leg in await line.legs(lead["id"])]
        return prices if all(p is not None for p in prices) else None

    prices = await eventually(priced)
    calls = twilio.network.calls
    managers = [twilio.network.calls_to(phone) for phone in MANAGER_PHONES]
    assert [len(c) for c in managers] == [1, 1, 1]  # each manager rung once, in order
    assert [c[0].status for c in managers] == ["no-answer", "completed", "completed"]
    assert all(c[0].from_ == CALLER_ID for c in managers)
    voicemail, winner = managers[1][0], managers[2][0]
    # The voicemail heard the whole whisper twice and was hung up on; it never connected anyone.
    whisper = voicemail.heard[0]
    assert re.fullmatch(r"Callback request from Shop, a visitor from Google Ads, visitor's time \d\d:\d\d\. "
                        r"Press 1 to connect\.", whisper)
    assert voicemail.heard.count(whisper) == 2 and voicemail.heard[-1] == "Goodbye."
    assert winner.pressed == ["1"]
    assert "This call is recorded." in winner.heard

    (visitor,) = twilio.network.calls_to(VISITOR)
    assert visitor.parent_sid == winner.sid and visitor.from_ == CALLER_ID
    assert visitor.dial_attrs["record"] == "record-from-answer-dual"
    assert visitor.heard == ["This call is recorded."]
    assert len(calls) == 4

    legs = await line.legs(lead["id"])
    assert [(leg.role, leg.end_reason, leg.accepted) for leg in legs] == [
        ("manager", "no_answer", False),
        ("manager", "completed", False),
        ("manager", "completed", True),
        ("visitor", "completed", False),
    ]
    assert legs[3].provider_sid == visitor.sid and legs[3].duration == 95 and legs[3].bridged_to == legs[2].id
    assert legs[3].recording_url and legs[3].recording_url.startswith(twilio.url)

    # 95 s is two started minutes to a Polish number at 0.035/min; an unanswered leg costs nothing.
    assert prices[0] == Decimal("0") and prices[3] == Decimal("0.07")
    assert prices[2] > 0 and sum(prices) == prices[1] + prices[2] + Decimal("0.07")
    assert {leg.price_unit for leg in await line.legs(lead["id"])} == {"USD"}
    assert visitor.price_fetches > twilio.network.price_lag


@pytest.fixture
async def two_managers(twilio: TwilioStandIn, database_url: str) -> AsyncIterator[Line]:
    async with Line(twilio, database_url, managers=2, recording=False) as running:
        yield running


async def test_voicemail_and_a_wrong_key_never_connect(twilio: TwilioStandIn, two_managers: Line) -> None:
    line = two_managers
    twilio.people[MANAGER_PHONES[0]] = Person.voicemail_box()
    twilio.people[MANAGER_PHONES[1]] = Person.pressing("2")
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], "missed")
    assert done.outcome == "no manager answered"
    assert twilio.network.calls_to(VISITOR) == []
    (wrong_key,) = twilio.network.calls_to(MANAGER_PHONES[1])
    assert wrong_key.pressed == ["2"] and wrong_key.heard[-1] == "Goodbye."
    assert [leg.accepted for leg in await line.legs(lead["id"])] == [False, False]
    # The visitor is told by text, from the site's number, with a link to pick a new time.
    (to, sender, body) = (await eventually(lambda: twilio.network.messages))[-1]
    assert to == VISITOR and sender == CALLER_ID and f"/callback/{lead['id']}?sig=" in body


async def test_a_visitor_who_does_not_answer_is_retried_and_the_manager_is_told(
    twilio: TwilioStandIn, two_managers: Line
) -> None:
    line = two_managers
    twilio.people[MANAGER_PHONES[0]] = Person.pressing("1")
    twilio.people[VISITOR] = Person.never_answers()
    lead = await line.request_callback()
    retry = await line.until_status(lead["id"], "scheduled")
    assert retry.attempt == 2
    (manager,) = twilio.network.calls_to(MANAGER_PHONES[0])
    await twilio.until_over(manager)
    assert manager.heard[-1] == "The visitor did not answer. We will try again in 10 minutes."
    assert twilio.network.calls_to(VISITOR)[0].status == "no-answer"


async def test_a_number_twilio_refuses_is_skipped_and_a_failed_dial_to_the_visitor_is_retried(
    twilio: TwilioStandIn, two_managers: Line
) -> None:
    line = two_managers
    twilio.people[MANAGER_PHONES[0]] = Person.invalid(21211)
    twilio.people[MANAGER_PHONES[1]] = Person.pressing("1")
    # Refused when the manager's call dials it: the Dial action says `failed` and (Twilio documents no
    # error code there) nothing more, so it is taken for a phone that could not be reached.
    twilio.people[VISITOR] = Person.invalid(13224)
    lead = await line.request_callback()
    retry = await line.until_status(lead["id"], "scheduled")
    # The refused manager number was skipped with Twilio's reason (the REST error says it).
    timeline = await line.timeline(lead["id"])
    assert any(f"Twilio refused {MANAGER_PHONES[0]}: it is not a valid phone number (error 21211)" in t
               for t in timeline)
    assert retry.attempt == 2
    (manager,) = twilio.network.calls_to(MANAGER_PHONES[1])
    await twilio.until_over(manager)
    assert manager.heard[-1] == "The visitor's phone could not be reached. We will try again in 10 minutes."


async def test_a_webhook_with_a_bad_signature_is_refused_and_changes_nothing(
    twilio: TwilioStandIn, two_managers: Line
) -> None:
    line = two_managers
    twilio.people[MANAGER_PHONES[0]] = Person(answers=False, ring_for=30)
    lead = await line.request_callback()

    async def ringing() -> list[CallLeg] | None:
        legs = await line.legs(lead["id"])
        return legs if legs and legs[0].status == "ringing" else None

    (leg,) = await eventually(ringing)
    before = (await line.lead(lead["id"])).version, await line.timeline(lead["id"])
    (call,) = twilio.network.calls_to(MANAGER_PHONES[0])
    forged = {"CallSid": call.sid, "AccountSid": twilio.account_sid, "CallStatus": "completed", "Digits": "1",
              "From": CALLER_ID, "To": MANAGER_PHONES[0]}
    other_key = twilio.network.validator.compute_signature(f"{line.url}/x", forged)
    for hook in ("status", "gather", "whisper", "hold"):
        path = f"/telephony/twilio/{hook}?leg={leg.id}"
        assert (await line.post(path, forged, signature=None))[0] == 403
        assert (await line.post(path, forged, signature=other_key))[0] == 403
        # Signed for another address (as by a proxy that rewrote it) is refused as well.
        wrong_url = twilio.network.validator.compute_signature(f"http://elsewhere{path}", forged)
        assert (await line.post(path, forged, signature=wrong_url))[0] == 403
    after = (await line.lead(lead["id"])).version, await line.timeline(lead["id"])
    assert after == before
    assert [(leg.status, leg.accepted) for leg in await line.legs(lead["id"])] == [("ringing", False)]


async def test_duplicated_and_late_callbacks_change_nothing(twilio: TwilioStandIn, two_managers: Line) -> None:
    line = two_managers
    twilio.people[MANAGER_PHONES[0]] = Person.pressing("1")
    twilio.people[VISITOR] = Person(talk_for=30)
    lead = await line.request_callback()
    await line.until_status(lead["id"], "completed")

    async def all_priced() -> bool:
        return all(leg.price is not None for leg in await line.legs(lead["id"]))

    await eventually(all_priced)
    await twilio.until_over(*twilio.network.calls.values())

    async def snapshot() -> tuple:
        found = await line.lead(lead["id"])
        legs = [(g.status, g.end_reason, g.duration, g.price, g.recording_url) for g in await line.legs(lead["id"])]
        return found.status, found.version, found.outcome, legs, await line.timeline(lead["id"])

    before, fetches = await snapshot(), [c.price_fetches for c in twilio.network.calls.values()]
    completed = [p for p in twilio.network.posted
                 if p.params.get("CallStatus") == "completed" or "DialCallStatus" in p.params]
    assert len(completed) == 2  # the manager's call ended, and the Dial's outcome
    late = [p for p in twilio.network.posted
            if "/status?" in p.url and p.params.get("CallStatus") in ("ringing", "in-progress")
            or "/screen?" in p.url]
    assert len(late) == 4  # both calls' ringing, the manager's answer and the visitor's (the screen), late
    for posted in [*completed, *late]:
        assert await line.replay(posted.url, posted.params) in (200, 204)
    assert await snapshot() == before
    assert [c.price_fetches for c in twilio.network.calls.values()] == fetches  # no second price hunt


async def test_a_create_that_times_out_does_not_produce_a_second_call(
    twilio: TwilioStandIn, database_url: str
) -> None:
    twilio.people[MANAGER_PHONES[0]] = Person.pressing("1")
    twilio.people[VISITOR] = Person(talk_for=20)
    twilio.faults.slow_create[MANAGER_PHONES[0]] = 3.0  # placed at once; the answer is lost on the way
    async with Line(twilio, database_url, managers=1, recording=False, provider_options={"timeout": 0.5}) as line:
        lead = await line.request_callback()
        done = await line.until_status(lead["id"], "completed")
        assert done.outcome == "talked"
        (call,) = twilio.network.calls_to(MANAGER_PHONES[0])
        manager_leg = (await line.legs(lead["id"]))[0]
        assert manager_leg.provider_sid == call.sid and manager_leg.accepted


async def test_a_provider_that_keeps_failing_fails_the_lead_with_the_reason(
    twilio: TwilioStandIn, two_managers: Line
) -> None:
    line = two_managers
    twilio.faults.create_errors = [(500, None)] * 3
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], "failed")
    assert done.outcome == "the telephony provider failed: Twilio had a server error (HTTP 500), after 3 attempts"
    assert any("Twilio had a server error" in t for t in await line.timeline(lead["id"]))
    assert twilio.network.calls == {}

