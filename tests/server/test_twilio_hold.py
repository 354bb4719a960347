"""A key press whose `<Dial>` was not ready in time: the manager is put on hold and the visitor is dialed
into their call through the REST API (an update with `Twiml`), through what that request can meet.

Under load (many leads at once, a busy SQLite writer) the reply to "press 1" can miss its deadline, or the
press's step can fail for want of the database and be held. Either way the manager pressed 1: they wait
on hold and are connected, and the lead never ends `failed` for what the update met on the way:
- 429 / 20429: too many requests at once, never processed, safe to repeat after a pause
  (https://www.twilio.com/docs/api/errors/20429);
- an answer lost on the way back: the redirect may have been made, and making it again would ring the
  visitor twice (https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource);
- 21220: the call is no longer in progress (the manager hung up meanwhile), it cannot be redirected
  (https://www.twilio.com/docs/api/errors/21220): the manager left, the hunt goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy.exc

from dialer.core.events import KeyPressed
from server import twilio_hooks
from tests.twilio_standin import Person, TwilioStandIn
from tests.twilio_standin.ringback import MANAGER_PHONES, VISITOR, Line

END = ("completed", "failed", "missed", "unreachable")


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn(price_lag=0) as standin:
        yield standin


@pytest.fixture
async def line(twilio: TwilioStandIn, database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Line]:
    # The reply to "press 1" is never ready in time: every press is answered with hold.
    monkeypatch.setattr(twilio_hooks, "PRESS_DEADLINE", 0.0)
    async with Line(twilio, database_url, managers=2, recording=False, provider_options={"timeout": 0.5}) as running:
        yield running


def gather_replies(twilio: TwilioStandIn) -> list[str]:
    return [body for url, body in twilio.network.replies.items() if "/gather?" in url]


async def test_a_rate_limited_redirect_is_made_again_and_the_manager_on_hold_is_connected(
    twilio: TwilioStandIn, line: Line
) -> None:
    twilio.faults.update_errors = [(429, 20429)] * 2
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], *END)
    assert (done.status, done.outcome) == ("completed", "talked")
    assert all("<Dial" not in reply for reply in gather_replies(twilio))  # the press was answered with hold
    assert len(twilio.network.calls_to(VISITOR)) == 1 and len(twilio.network.calls_to(MANAGER_PHONES[0])) == 1
    assert twilio.faults.update_errors == []


async def test_a_redirect_whose_answer_is_lost_is_not_made_again(twilio: TwilioStandIn, line: Line) -> None:
    twilio.faults.slow_update = 1.0  # made at once, answered after our 0.5 s timeout
    twilio.people[VISITOR] = Person(talk_for=200)  # still talking when the answer is given up on
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], *END)
    assert (done.status, done.outcome) == ("completed", "talked")
    assert len(twilio.network.calls_to(VISITOR)) == 1  # rung once


async def test_a_manager_gone_before_the_redirect_is_a_manager_who_left_and_the_hunt_goes_on(
    twilio: TwilioStandIn, line: Line
) -> None:
    twilio.faults.update_errors = [(400, 21220)]  # the first manager's call is over: it cannot be redirected
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], *END)
    assert (done.status, done.outcome) == ("completed", "talked")
    assert [len(twilio.network.calls_to(p)) for p in (*MANAGER_PHONES[:2], VISITOR)] == [1, 1, 1]
    assert any("the manager hung up before the visitor was connected" in t for t in await line.timeline(lead["id"]))


@pytest.fixture
async def slower_line(database_url: str) -> AsyncIterator[tuple[TwilioStandIn, Line]]:
    # A call's second is 0.05 s here (the hold's minute lasts 3 s), the engine's clock is real: the held
    # press is applied again after a second, as it would be in a real minute on hold.
    with TwilioStandIn(price_lag=0, second=0.05) as twilio:
        async with Line(twilio, database_url, managers=1, recording=False) as running:
            yield twilio, running


async def test_a_press_whose_step_meets_the_database_away_waits_on_hold_and_is_connected(
    slower_line: tuple[TwilioStandIn, Line], monkeypatch: pytest.MonkeyPatch
) -> None:
    twilio, line = slower_line
    twilio.people[VISITOR] = Person(talk_for=5)
    engine = line.runtime.engine
    step = engine._step
    refused: list[KeyPressed] = []

    async def locked_once(batch: list[tuple[str, Any]]) -> dict[str, Any]:
        presses = [work.event for _, work in batch if isinstance(work.event, KeyPressed)]
        if presses and not refused:
            refused.extend(presses)
            raise sqlalchemy.exc.OperationalError("UPDATE leads …", {}, Exception("database is locked"))
        return await step(batch)

    monkeypatch.setattr(engine, "_step", locked_once)
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], *END)
    assert refused, "the fault was never injected"
    assert (done.status, done.outcome) == ("completed", "talked")
    # The manager who pressed 1 was kept on hold, never told the callback was taken care of and hung up.
    (reply,) = gather_replies(twilio)
    assert "<Pause" in reply and "<Hangup" not in reply
    assert len(twilio.network.calls_to(MANAGER_PHONES[0])) == 1 and len(twilio.network.calls_to(VISITOR)) == 1
