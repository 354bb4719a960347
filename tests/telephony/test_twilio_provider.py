"""The Twilio provider on its own, through the real `twilio` library against the local stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dialer.core.call_status import CallState, CallStatus, missing_reports
from dialer.core.events import LegEnded
from dialer.core.states import EndReason, LegRole, LegStatus
from dialer.telephony.base import CallRequest, ProviderError
from dialer.telephony.twilio import TwilioProvider
from tests.twilio_standin import Person, TwilioStandIn, listening_socket, url_of
from tests.twilio_standin.network import Recording

CALLER_ID = "+12025550100"
NUMBER = "+12025550199"


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn() as standin:
        yield standin


@pytest.fixture
def nowhere() -> Iterator[str]:
    """A public URL where nothing answers: these tests look at the REST side only."""
    sock = listening_socket()
    yield url_of(sock)
    sock.close()


def provider_for(twilio: TwilioStandIn, public_url: str, **options: object) -> TwilioProvider:
    options = {"timeout": 2.0, "retry_delays": (0.01, 0.01), **options}
    return TwilioProvider(twilio.account_sid, str(options.pop("token", twilio.auth_token)), public_url,
                          api_base_url=twilio.url, **options)  # type: ignore[arg-type]


@pytest.fixture
async def provider(twilio: TwilioStandIn, nowhere: str) -> AsyncIterator[TwilioProvider]:
    p = provider_for(twilio, nowhere)
    yield p
    await p.close()


def manager_call(to: str = NUMBER) -> CallRequest:
    return CallRequest(leg_id="leg1", to=to, role=LegRole.MANAGER, timeout=20, caller_id=CALLER_ID, whisper="hi")


async def test_a_call_is_created_with_our_callbacks_and_the_sites_caller_id(
    twilio: TwilioStandIn, provider: TwilioProvider, nowhere: str
) -> None:
    twilio.people[NUMBER] = Person.never_answers()
    sid = await provider.place_call(manager_call())
    (call,) = twilio.network.calls_to(NUMBER)
    assert sid == call.sid and call.from_ == CALLER_ID and call.timeout == 20
    assert call.url == f"{nowhere}/telephony/twilio/whisper?leg=leg1"
    assert call.status_callback == f"{nowhere}/telephony/twilio/status?leg=leg1"
    assert call.status_events == {"initiated", "ringing", "answered", "completed"}


@pytest.mark.parametrize(("code", "words"), [(21211, "not a valid phone number"), (21214, "cannot be reached"),
                                             (21215, "geo permissions")])
async def test_a_refused_number_is_final_with_a_clear_reason(
    twilio: TwilioStandIn, provider: TwilioProvider, code: int, words: str
) -> None:
    twilio.people[NUMBER] = Person.invalid(code)
    with pytest.raises(ProviderError) as refused:
        await provider.place_call(manager_call())
    assert refused.value.permanent and refused.value.code == str(code)
    assert NUMBER in refused.value.reason and words in refused.value.reason
    assert twilio.network.calls_to(NUMBER) == []


async def test_rate_limits_and_outages_are_retried_and_the_call_is_placed_once(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    twilio.people[NUMBER] = Person.never_answers()
    twilio.faults.create_errors = [(429, 20429), (503, None)]
    sid = await provider.place_call(manager_call())
    assert [c.sid for c in twilio.network.calls_to(NUMBER)] == [sid]


async def test_rate_limits_that_do_not_let_up_are_reported_as_such_never_as_a_failure(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    twilio.faults.create_errors = [(429, 20429)] * 3
    with pytest.raises(ProviderError) as limited:
        await provider.place_call(manager_call())
    assert limited.value.rate_limited and not limited.value.permanent
    assert twilio.network.calls == {}


async def test_refused_credentials_are_not_retried_and_reported_without_the_secret(
    twilio: TwilioStandIn, nowhere: str
) -> None:
    wrong = provider_for(twilio, nowhere, token="not-the-token")
    try:
        with pytest.raises(ProviderError) as failed:
            await wrong.place_call(manager_call())
    finally:
        await wrong.close()
    assert not failed.value.permanent and not failed.value.rate_limited
    assert "TWILIO_AUTH_TOKEN" in failed.value.reason
    # Asked once: trying refused credentials again cannot help (and can get an account locked).
    assert twilio.faults.requests == [("POST", "Calls.json")]
    assert "not-the-token" not in failed.value.reason and twilio.auth_token not in failed.value.reason
    assert twilio.network.calls == {}


async def test_a_create_that_times_out_is_looked_up_and_never_placed_twice(
    twilio: TwilioStandIn, nowhere: str
) -> None:
    twilio.people[NUMBER] = Person.never_answers()
    twilio.faults.slow_create[NUMBER] = 2.0  # Twilio places the call; its answer comes too late
    impatient = provider_for(twilio, nowhere, timeout=0.3)
    try:
        sid = await impatient.place_call(manager_call())
    finally:
        await impatient.close()
    # The create timed out (the library sets no timeout of its own), the call was looked up and found.
    assert [c.sid for c in twilio.network.calls_to(NUMBER)] == [sid]
    assert twilio.faults.requests == [("POST", "Calls.json"), ("GET", "Calls.json")]


async def test_recordings_are_fetched_with_the_accounts_credentials_and_only_from_twilio(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    twilio.network.recordings["RE1"] = b"RIFF-audio"
    url = f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Recordings/RE1"
    assert await provider.fetch_recording(url) == (b"RIFF-audio", "audio/x-wav")
    with pytest.raises(ProviderError):
        await provider.fetch_recording("http://127.0.0.1:9/2010-04-01/Accounts/AC1/Recordings/RE1")


async def test_a_calls_recordings_are_listed_once_completed_oldest_first(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    network = twilio.network
    now = datetime.now(UTC)
    network.recorded = {
        "RE2": Recording("RE2", "CA1", now, 30, status="completed"),
        "RE1": Recording("RE1", "CA1", now - timedelta(seconds=60), 12, status="completed"),
        "RE3": Recording("RE3", "CA1", now, 0),  # still processing: no media yet
        "RE4": Recording("RE4", "CA2", now, 9, status="completed"),  # another call's
    }
    assert await provider.recordings("CA1") == [network.recording_url(network.recorded[sid]) for sid in ("RE1", "RE2")]
    assert await provider.recordings("CA9") == []
    assert ("GET", "Recordings.json") in twilio.faults.requests
    refused = provider_for(twilio, provider.hooks.public_url, token="wrong")
    with pytest.raises(ProviderError) as failed:
        await refused.recordings("CA1")
    assert failed.value.code == "20003"  # an answer that is not "none yet": the job asks again later
    await refused.close()


async def test_outside_a_webhook_the_visitor_is_dialed_by_redirecting_the_managers_call(
    twilio: TwilioStandIn, provider: TwilioProvider, nowhere: str
) -> None:
    twilio.people[NUMBER] = Person(answers=False, ring_for=30)
    manager_sid = await provider.place_call(manager_call())
    visitor = CallRequest(leg_id="leg2", to="+48501234567", role=LegRole.VISITOR, timeout=20,
                          caller_id=CALLER_ID, bridge_sid=manager_sid, record=True)
    assert await provider.place_call(visitor) is None  # Twilio names the visitor's call when it rings
    (call,) = twilio.network.calls_to(NUMBER)
    assert call.redirect is not None
    assert '<Dial action="' + nowhere + '/telephony/twilio/dial?leg=leg2"' in call.redirect
    assert 'callerId="+12025550100"' in call.redirect and 'record="record-from-answer-dual"' in call.redirect
    assert ">+48501234567</Number>" in call.redirect


async def test_call_status_tells_a_call_going_on_one_over_and_one_twilio_never_had(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    """The one question asked of a call whose callbacks are missing (GET /Calls/{sid}): a call placed a
    moment ago is not answered yet; one Twilio has as in progress or over is that, how Twilio says, with
    the call resource's `answered_by`; a 404 is a call Twilio has no record of."""
    twilio.people[NUMBER] = Person.never_answers()
    sid = await provider.place_call(manager_call())
    assert sid is not None
    status = await provider.call_status(sid)
    assert status is not None and status.state in (CallState.QUEUED, CallState.RINGING) and not status.answered
    (call,) = twilio.network.calls_to(NUMBER)
    await provider.hangup(sid)
    await asyncio.wait_for(call.finished.wait(), 10)  # the stand-in's own run of the call writes no more
    call.status, call.answered_by, call.ended = "in-progress", "human", None  # as Twilio would have it
    assert await provider.call_status(sid) == CallStatus(CallState.IN_PROGRESS, answered=True, answered_by="human")
    call.status, call.ended, call.duration = "completed", call.created, 42
    over = await provider.call_status(sid)
    assert over == CallStatus(CallState.ENDED, EndReason.COMPLETED, duration=42, answered=True, answered_by="human")
    assert await provider.call_status("CA" + "0" * 32) is None


async def test_a_machines_answer_found_by_asking_is_the_visitors_voicemail(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    """A visitor's call that answering machine detection gave to a machine is `completed` on Twilio, with
    `answered_by` saying so: asked about, it ends the visitor's leg as voicemail, never a conversation."""
    twilio.people[NUMBER] = Person.never_answers()
    sid = await provider.place_call(manager_call())
    assert sid is not None
    (call,) = twilio.network.calls_to(NUMBER)
    await provider.hangup(sid)
    await asyncio.wait_for(call.finished.wait(), 10)  # the stand-in's own run of the call writes no more
    call.status, call.answered_by, call.ended, call.duration = "completed", "machine_start", call.created, 4
    status = await provider.call_status(sid)
    assert status is not None and status.ended and status.machine
    (report,) = missing_reports("leg2", sid, LegRole.VISITOR, LegStatus.RINGING, status)
    assert isinstance(report, LegEnded) and report.reason == EndReason.VOICEMAIL


@pytest.mark.parametrize("level", [None, "DEBUG"])
async def test_the_librarys_request_logs_never_show_a_full_number(
    twilio: TwilioStandIn, provider: TwilioProvider, caplog: pytest.LogCaptureFixture, level: str | None
) -> None:
    """With INFO logging (as `ringback serve` runs) the library's request lines are not logged; with its
    loggers lowered to DEBUG on purpose, the numbers in them are masked."""
    import logging
    from datetime import UTC, datetime

    caplog.set_level(logging.INFO)
    if level is not None:
        for name in ("twilio.http_client", "twilio.async_http_client"):
            caplog.set_level(level, logger=name)
    twilio.people[NUMBER] = Person.never_answers()
    await provider.place_call(manager_call())
    await provider.find_call(manager_call(), datetime.now(UTC))  # a GET with the number in its query
    digits = NUMBER.lstrip("+")
    assert digits not in caplog.text and digits[:-2] not in caplog.text
    if level is not None:
        assert "Twilio API Request" in caplog.text  # the lines are there, the numbers are not


async def test_a_lost_create_is_matched_on_from_to_and_time_never_to_another_sites_call(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    twilio.people[NUMBER] = Person(answers=False, ring_for=5)
    before = datetime.now(UTC) - timedelta(seconds=30)
    other_site = replace(manager_call(), leg_id="leg2", caller_id="+12025550111")
    theirs = await provider.place_call(other_site)  # the same manager, rung for another site's lead
    # Our create was lost before it placed anything: the look-up must not take their call for ours.
    assert await provider.find_call(manager_call(), before) is None
    ours = await provider.place_call(manager_call())
    assert await provider.find_call(manager_call(), before) == ours != theirs
    assert await provider.find_call(other_site, before) == theirs
    # Nor one placed before our leg was written.
    assert await provider.find_call(manager_call(), datetime.now(UTC) + timedelta(minutes=1)) is None


async def test_a_lost_create_look_up_that_twilio_refuses_is_never_taken_for_no_such_call(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    from datetime import UTC, datetime, timedelta

    # Without an answer we cannot know whether the call exists: a "no" would dial the person twice.
    refused = provider_for(twilio, provider.hooks.public_url, token="wrong")
    with pytest.raises(ProviderError) as failed:
        await refused.find_call(manager_call(), datetime.now(UTC) - timedelta(seconds=30))
    assert failed.value.code == "20003" and not failed.value.permanent
    await refused.close()


async def test_calls_carry_the_time_limit(twilio: TwilioStandIn, provider: TwilioProvider) -> None:
    from dataclasses import replace

    twilio.people[NUMBER] = Person.never_answers()
    sid = await provider.place_call(replace(manager_call(), time_limit=600))
    assert twilio.faults.created[sid]["TimeLimit"] == str(600 + 120)  # the conversation, plus ring and whisper


async def test_a_large_recording_is_streamed_a_chunk_at_a_time_never_held_whole(
    twilio: TwilioStandIn, provider: TwilioProvider
) -> None:
    from dialer.telephony.twilio_recordings import RECORDING_CHUNK

    audio = b"RIFF" + bytes(range(256)) * 12_000  # about 3 MB, as a few minutes of dual-channel WAV
    twilio.network.recordings["RE2"] = audio
    url = f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Recordings/RE2"
    media_type, chunks = await provider.stream_recording(url)
    sizes, received = [], bytearray()
    async for chunk in chunks:
        sizes.append(len(chunk))
        received += chunk
    assert media_type == "audio/x-wav" and bytes(received) == audio
    assert len(sizes) > 10 and max(sizes) <= RECORDING_CHUNK
    with pytest.raises(ProviderError):
        await provider.stream_recording(f"{twilio.url}/2010-04-01/Accounts/{twilio.account_sid}/Recordings/RE9")
    with pytest.raises(ProviderError):
        await provider.stream_recording("http://127.0.0.1:9/2010-04-01/Accounts/AC1/Recordings/RE1")
