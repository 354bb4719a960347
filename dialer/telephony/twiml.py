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


@dataclass(frozen=True)
class Hooks:
    """Absolute webhook addresses under the public URL (the address Twilio signs its requests with)."""

    public_url: str

    def url(self, name: str, leg_id: str | None = None) -> str:
        query = f"?{urlencode({'leg': leg_id})}" if leg_id else ""
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

    The visitor's ringing and answer come from the Number's status callback; how their call ended comes
    from the Dial action. With recording on, both parties hear a notice first.
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
    dial = response.dial(
        caller_id=request.caller_id,
        timeout=request.timeout,
        **limit,
        action=hooks.url("dial", request.leg_id),
        method="POST",
        **record,
    )
    notice = {"url": hooks.url("notice"), "method": "POST"} if request.record else {}
    dial.number(
        request.to,
        status_callback=hooks.url("status", request.leg_id),
        status_callback_event="ringing answered",
        status_callback_method="POST",
        **notice,
    )
    return str(response)


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
