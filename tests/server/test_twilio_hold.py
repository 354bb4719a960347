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

The hold itself lasts as long as the engine needs, within a bound: pauses chained by `<Redirect>` to the
hold webhook (https://www.twilio.com/docs/voice/twiml/redirect), then a goodbye.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy.exc

from dialer.core.events import KeyPressed
from dialer.telephony import twiml
from server import twilio_hooks
from tests.twilio_standin import Call, Person, TwilioStandIn
from tests.twilio_standin.network import APPLICATION_ERROR
from tests.twilio_standin.ringback import MANAGER_PHONES, VISITOR, Line, eventually

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


def hold_rounds(twilio: TwilioStandIn, call: Call) -> list[str]:
    """The rounds of the hold the manager's call asked for (each after a pause, by `<Redirect>`)."""
    return [p.url for p in twilio.network.posted if "/hold?" in p.url and p.params.get("CallSid") == call.sid]


def busy_until(line: Line, twilio: TwilioStandIn, ready: Callable[[], bool]) -> list[KeyPressed]:
    """The engine's step for the first key press waits until `ready` holds on the stand-in's network (the
    engine busy that long); returns the presses it held up."""

    async def looked() -> bool:  # read in the stand-in's event loop, where its network changes
        async def look() -> bool:
            return ready()

        return await twilio.run(look)

    engine = line.runtime.engine
    step = engine._step
    held: list[KeyPressed] = []

    async def busy(batch: list[tuple[str, Any]]) -> dict[str, Any]:
        presses = [work.event for _, work in batch if isinstance(work.event, KeyPressed)]
        if presses and not held:
            held.extend(presses)
            await eventually(looked, timeout=60)
        return await step(batch)

    engine._step = busy  # type: ignore[method-assign]
    return held


async def test_a_manager_held_longer_than_one_pause_stays_on_hold_and_is_connected(
    slower_line: tuple[TwilioStandIn, Line], monkeypatch: pytest.MonkeyPatch
) -> None:
    twilio, line = slower_line
    monkeypatch.setattr(twilio_hooks, "PRESS_DEADLINE", 0.0)  # on hold at once
    twilio.people[VISITOR] = Person(talk_for=5)
    rounds = 90 // twiml.HOLD_PAUSE_SECONDS + 1  # the engine's step held up for over 90 s of the call's time

    def held_long() -> bool:
        calls = twilio.network.calls_to(MANAGER_PHONES[0])
        return any(c.over or len(hold_rounds(twilio, c)) >= rounds for c in calls)

    held = busy_until(line, twilio, held_long)
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], *END, timeout=60)
    assert held, "the engine was never held up"
    assert (done.status, done.outcome) == ("completed", "talked")
    (manager,) = twilio.network.calls_to(MANAGER_PHONES[0])
    (visitor,) = twilio.network.calls_to(VISITOR)
    assert len(hold_rounds(twilio, manager)) >= rounds and visitor.bridged
    # One sentence, then silence until the visitor was connected: never a goodbye.
    assert manager.heard.count(twiml.HOLD) == 1
    assert not {twiml.HOLD_OVER, twiml.NOT_NEEDED, twiml.GOODBYE, APPLICATION_ERROR} & set(manager.heard)


async def test_the_hold_ends_politely_at_its_bound_and_the_hunt_goes_on(twilio: TwilioStandIn, line: Line) -> None:
    # The first press's step is held up until that manager's call is over: the hold runs to its end.
    def first_manager_gone() -> bool:
        return any(c.over for c in twilio.network.calls_to(MANAGER_PHONES[0]))

    held = busy_until(line, twilio, first_manager_gone)
    lead = await line.request_callback()
    done = await line.until_status(lead["id"], *END, timeout=60)
    assert held, "the engine was never held up"
    (first,) = twilio.network.calls_to(MANAGER_PHONES[0])
    assert len(hold_rounds(twilio, first)) == twiml.HOLD_ROUNDS
    assert first.heard[-1] == twiml.HOLD_OVER and APPLICATION_ERROR not in first.heard
    # The manager who left is a manager who left: the next one takes the lead.
    assert (done.status, done.outcome) == ("completed", "talked")
    assert [len(twilio.network.calls_to(p)) for p in (*MANAGER_PHONES[:2], VISITOR)] == [1, 1, 1]


async def test_a_round_of_hold_for_a_lead_that_is_over_hangs_up_and_a_failed_round_is_waited_out(
    twilio: TwilioStandIn, line: Line
) -> None:
    lead = await line.request_callback()
    await line.until_status(lead["id"], *END)
    leg = next(leg for leg in await line.legs(lead["id"]) if leg.role == "manager")
    (call,) = twilio.network.calls_to(MANAGER_PHONES[0])

    async def signed(path: str, **extra: str) -> tuple[int, str]:
        form = {"CallSid": call.sid, "AccountSid": twilio.account_sid, "CallStatus": "in-progress", **extra}
        signature = twilio.network.validator.compute_signature(f"{line.url}{path}", form)
        return await line.post(path, form, signature=signature)

    status, body = await signed(f"/telephony/twilio/hold?leg={leg.id}&round=2")
    assert status == 200 and twiml.NOT_NEEDED in body and "<Hangup" in body  # the lead is over: no more hold
    assert (await signed(f"/telephony/twilio/hold?leg={leg.id}&round=x"))[0] == 400
    status, body = await signed(f"/telephony/twilio/hold?leg={leg.id}&round={twiml.HOLD_ROUNDS}")
    assert twiml.HOLD_OVER in body and "<Hangup" in body
    # A round whose answer Twilio could not get (its fallback URL is asked) is waited out all the same.
    failed = f"{line.url}/telephony/twilio/hold?leg={leg.id}&round=3"
    status, body = await signed(f"/telephony/twilio/fallback?leg={leg.id}", ErrorCode="11205", ErrorUrl=failed)
    assert "<Pause" in body and "round=4" in body and "<Hangup" not in body
