"""Real calls through the `twilio` library, against the local stand-in of Twilio's API and network."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

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
