"""Texts to visitors through the real `twilio` library against the stand-in: what became of each is kept
and shown, a refused sender is never reported as sent, STOP and START are honoured."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from dialer.db.models import TextMessage
from tests.harness import relaxed_abuse
from tests.twilio_standin import Person, TwilioStandIn
from tests.twilio_standin.ringback import CALLER_ID, MANAGER_PHONES, VISITOR, Line, eventually

US_VISITOR = "+12125551234"
SERVICE = "MG" + "0123456789abcdef" * 2


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn() as standin:
        standin.people[MANAGER_PHONES[0]] = Person.never_answers()
        yield standin


async def _line(twilio: TwilioStandIn, database_url: str, **settings: Any) -> Line:
    line = Line(twilio, database_url, managers=1, recording=False)
    await line.__aenter__()
    if settings:
        await line.set_site(settings={"calling_window": ["00:00", "24:00"], **relaxed_abuse(), **settings})
    return line


@pytest.fixture
async def line(twilio: TwilioStandIn, database_url: str) -> AsyncIterator[Line]:
    running = await _line(twilio, database_url)
    yield running
    await running.__aexit__(None, None, None)


async def texts_of(line: Line, lead_id: str) -> list[TextMessage]:
    assert line.sessions is not None
    async with line.sessions() as session:
        query = select(TextMessage).where(TextMessage.lead_id == lead_id).order_by(TextMessage.created_at)
        return list((await session.execute(query)).scalars())


async def missed(line: Line, phone: str = VISITOR) -> str:
    lead = await line.request_callback(phone=phone)
    await line.until_status(lead["id"], "missed")
    return str(lead["id"])


async def final_text(line: Line, lead_id: str) -> TextMessage:
    async def settled() -> TextMessage | None:
        found = await texts_of(line, lead_id)
        return found[0] if found and found[0].status not in ("sending", "queued", "sent") else None

    return await eventually(settled)


async def test_a_text_is_kept_with_its_sid_delivery_and_price_and_says_how_to_opt_out_in_the_us(
    twilio: TwilioStandIn, line: Line
) -> None:
    twilio.sms.reorder = twilio.sms.duplicate = True  # "delivered" before "sent", each twice
    lead_id = await missed(line, US_VISITOR)
    text = await final_text(line, lead_id)
    (sent,) = twilio.sms.texts.values()
    assert (text.status, text.provider_sid, text.sender, text.kind) == ("delivered", sent.sid, CALLER_ID, "missed")
    assert sent.body.endswith("Reply STOP to opt out.")

    async def priced() -> TextMessage | None:
        (found,) = await texts_of(line, lead_id)
        return found if found.price is not None else None

    assert (await eventually(priced)).price == Decimal("0.0079")
    timeline = await line.timeline(lead_id)
    assert f"text message (missed) accepted by the provider: {sent.sid}" in timeline
    assert timeline.count("text message (missed): delivered") == 1 and "text message (missed): sent" not in timeline
    # Outside the US and Canada the law asks for no opt-out line.
    polish = await missed(line, VISITOR)
    await final_text(line, polish)
    assert "STOP" not in twilio.network.messages[-1][2]


async def test_a_refused_sender_is_reported_and_never_shown_as_sent(twilio: TwilioStandIn, line: Line) -> None:
    twilio.sms.verified_caller_ids.add(CALLER_ID)  # the caller ID is a verified number: it cannot text
    lead_id = await missed(line)
    text = await final_text(line, lead_id)
    assert (text.status, text.error_code, text.provider_sid) == ("refused", "21601", None)
    timeline = await line.timeline(lead_id)
    assert any(t.startswith("text message (missed) not sent: Twilio refused the text: the sender cannot send "
                            "texts") and t.endswith("(error 21601)") for t in timeline)
    assert not any("accepted" in t or "delivered" in t for t in timeline)
    assert twilio.network.messages == []


async def test_a_messaging_service_can_be_the_sender_apart_from_the_caller_id(
    twilio: TwilioStandIn, database_url: str
) -> None:
    twilio.sms.verified_caller_ids.add(CALLER_ID)
    line = await _line(twilio, database_url, sms_sender=SERVICE)
    try:
        lead_id = await missed(line)
        text = await final_text(line, lead_id)
        assert (text.status, text.sender) == ("delivered", SERVICE)
        (sent,) = twilio.sms.texts.values()
        assert sent.sender == SERVICE
        (call,) = twilio.network.calls_to(MANAGER_PHONES[0])
        assert call.from_ == CALLER_ID  # calls still come from the caller ID
    finally:
        await line.__aexit__(None, None, None)


async def test_stop_stops_texts_until_start(twilio: TwilioStandIn, line: Line) -> None:
    first = await missed(line)
    await final_text(line, first)
    inbound = f"{line.url}/telephony/twilio/sms/inbound"
    # A forged STOP (unsigned) changes nothing; the visitor's real one does.
    status, _ = await line.post("/telephony/twilio/sms/inbound", {"From": VISITOR, "Body": "STOP"}, signature=None)
    assert status == 403
    await twilio.run(lambda: twilio.sms.reply(twilio.network, inbound, VISITOR, CALLER_ID, "Stop"))
    assert "the visitor replied STOP: no more text messages to this number until they reply START" in (
        await line.timeline(first))

    sent_before = len(twilio.network.messages)
    second = await missed(line)
    text = await final_text(line, second)
    assert text.status == "opted_out" and len(twilio.network.messages) == sent_before
    assert any(t.startswith("text message (missed) not sent: the visitor replied STOP") for t in await line.timeline(second))

    await twilio.run(lambda: twilio.sms.reply(twilio.network, inbound, VISITOR, CALLER_ID, "START"))
    third = await missed(line)
    assert (await final_text(line, third)).status == "delivered"
    assert len(twilio.network.messages) == sent_before + 1
