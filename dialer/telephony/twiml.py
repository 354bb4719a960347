"""The TwiML documents Ringback answers Twilio with, and the webhook addresses they point at.

Built with the `twilio` library's `VoiceResponse`, so escaping and attribute names are the library's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from dialer.telephony.base import CallRequest

HOOKS_PATH = "/telephony/twilio"
GATHER_SECONDS = 6  # silence after the whisper before it is said once more
RECORDING_NOTICE = "This call is recorded."
NOT_NEEDED = "Thank you. This callback has been taken care of. Goodbye."
GOODBYE = "Goodbye."
HOLD = "Connecting you to the visitor."
HOLD_OVER = "Sorry, the visitor could not be connected this time. Goodbye."
# A manager on hold waits in rounds: a pause, then a `<Redirect>` to the hold webhook, which answers the
# next round (https://www.twilio.com/docs/voice/twiml/redirect , https://www.twilio.com/docs/voice/twiml/pause).
# A REST redirect of the call (the visitor's `<Dial>`) replaces whichever round is playing.
HOLD_PAUSE_SECONDS = 20
HOLD_ROUNDS = 15  # 5 minutes on hold, then a polite goodbye
SORRY = "Sorry, something went wrong on our side. Goodbye."
SAFE_WHISPER = "A callback request. Press 1 to connect."
# Synchronous answering machine detection on the visitor's <Number>: the bridge waits for its verdict, so
# it is kept short (3 s is Twilio's minimum; https://www.twilio.com/docs/voice/twiml/number).
MACHINE_DETECTION_TIMEOUT = 5


@dataclass(frozen=True)
class Hooks:
    """Absolute webhook addresses under the public URL (the address Twilio signs its requests with)."""

    public_url: str

    def url(self, name: str, leg_id: str | None = None, **extra: str) -> str:
        params = {"leg": leg_id, **extra} if leg_id else extra
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.public_url.rstrip('/')}{HOOKS_PATH}/{name}{query}"


def whisper(text: str, gather_url: str) -> str:
    """The lead read to a manager inside a one-digit Gather, once more, then goodbye.

    A voicemail greeting never presses a key, so it runs out of whisper and is hung up on.
    """
    response = VoiceResponse()
    for _ in range(2):
        gather = response.gather(num_digits=1, timeout=GATHER_SECONDS, action=gather_url, method="POST")
        gather.say(text)
    response.say(GOODBYE)
    response.hangup()
    return str(response)


def dial_visitor(request: CallRequest, hooks: Hooks) -> str:
    """Connect the manager who pressed 1 to the visitor: the site's caller ID, a timeout, an action URL.

    The visitor's ringing comes from the Number's status callback. Their answer comes from the Number's
    `url` (the screen), fetched once answering machine detection has decided: a person is connected, a
    machine is hung up on before any bridge. How their call ended comes from the Dial action, which names
    the manager's leg too (`bridge`): when the manager hung up first, that request says so. With
    recording on, both parties hear a notice first.
    """
    response = VoiceResponse()
    record = {}
    if request.record:
        response.say(RECORDING_NOTICE)
        record = {
            "record": "record-from-answer-dual",
            "recording_status_callback": hooks.url("recording", request.leg_id),
            "recording_status_callback_event": "completed",
            "recording_status_callback_method": "POST",
        }
    limit = {"time_limit": request.time_limit} if request.time_limit else {}  # the conversation's limit
    bridge = {"bridge": request.bridge_leg_id} if request.bridge_leg_id else {}
    dial = response.dial(
        caller_id=request.caller_id,
        timeout=request.timeout,
        **limit,
        action=hooks.url("dial", request.leg_id, **bridge),
        method="POST",
        **record,
    )
    dial.number(
        request.to,
        status_callback=hooks.url("status", request.leg_id),
        status_callback_event="ringing",
        status_callback_method="POST",
        url=hooks.url("screen", request.leg_id, **({"record": "1"} if request.record else {})),
        method="POST",
        machine_detection="Enable",
        machine_detection_timeout=MACHINE_DETECTION_TIMEOUT,
    )
    return str(response)


def screened(person: bool, record: bool) -> str:
    """The screen's answer on the visitor's side: a person hears the recording notice (if any) and is
    connected; a machine is hung up on, so the manager is never bridged to a greeting."""
    response = VoiceResponse()
    if not person:
        response.hangup()
    elif record:
        response.say(RECORDING_NOTICE)
    return str(response)


def hold(hooks: Hooks, leg_id: str, round_: int = 0) -> str:
    """The reply to a key press whose `<Dial>` is not ready within our deadline (round 0: the manager hears
    one sentence), and to each later round of the hold: a pause, then the hold webhook asked for the next
    round, until `HOLD_ROUNDS` (`hold_over`). The `<Dial>` comes meanwhile through the REST API."""
    response = VoiceResponse()
    if round_ == 0:
        response.say(HOLD)
    response.pause(length=HOLD_PAUSE_SECONDS)
    response.redirect(hooks.url("hold", leg_id, round=str(round_ + 1)), method="POST")
    return str(response)


def hold_over() -> str:
    """The hold's bound: the manager is thanked and the call ends (its status callback tells the engine)."""
    return say_and_hang_up(HOLD_OVER)


def say_and_hang_up(text: str | None) -> str:
    response = VoiceResponse()
    if text:
        response.say(text)
    response.hangup()
    return str(response)


def notice() -> str:
    response = VoiceResponse()
    response.say(RECORDING_NOTICE)
    return str(response)
