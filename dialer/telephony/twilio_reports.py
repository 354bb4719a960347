"""What Twilio's webhooks post, read into dialer events: a call's status callback, the visitor's screen
(answering machine detection's verdict) and the Dial action; and a fetched call's status read the same
way. Pure: `server/twilio_hooks.py` hands the events to the engine, `twilio.py` uses `fetched_status`."""

from __future__ import annotations

from collections.abc import Mapping

from dialer.core.call_status import MACHINES, CallState, machine_ended
from dialer.core.events import LegAnswered, LegEnded, LegEvent, LegInitiated, LegRinging
from dialer.core.states import EndReason
from dialer.telephony.base import CallStatus
from dialer.telephony.twilio_rest import NUMBER_REFUSED, as_int

_STATUS_ENDED = {
    "completed": EndReason.COMPLETED,
    "busy": EndReason.BUSY,
    "no-answer": EndReason.NO_ANSWER,
    "failed": EndReason.FAILED,
    "canceled": EndReason.CANCELED,
}


def status_event(leg_id: str, form: Mapping[str, str]) -> LegEvent | None:
    """A call status callback (manager legs, and the visitor's ringing)."""
    return _callback_event(leg_id, form.get("CallSid"), form.get("CallStatus", ""), form.get("AnsweredBy"),
                           as_int(form.get("CallDuration")), detail=_error_detail(form))


def _callback_event(
    leg_id: str, sid: str | None, status: str, answered_by: str | None, duration: int | None,
    detail: str | None = None,
) -> LegEvent | None:
    """A status callback's `CallStatus` as a report on the leg."""
    machine = answered_by in MACHINES
    if status == "ringing":
        return LegRinging(leg_id, sid)
    if status == "initiated":
        # Twilio took the call out of the account's queue and dials it: the ring deadline counts from now
        # (the `initiated` event carries CallStatus=initiated: twilio/twilio-java#321).
        return LegInitiated(leg_id, sid)
    if status == "in-progress":
        return machine_ended(leg_id, sid, answered_by) if machine else LegAnswered(leg_id, sid)
    if status in _STATUS_ENDED:
        if machine:
            return machine_ended(leg_id, sid, answered_by)
        return LegEnded(leg_id, sid, reason=_STATUS_ENDED[status], duration=duration, detail=detail)
    return None  # queued: the sid is known from the create


def fetched_status(status: str, answered_by: str | None, duration: int | None) -> CallStatus:
    """A fetched call's `status`, `answered_by` and `duration` as a `CallStatus`. Twilio's `completed` is a
    call that was answered and then ended (https://www.twilio.com/docs/voice/api/call-resource#call-status-values);
    `queued` (and `initiated`, which callbacks carry) one not ringing yet."""
    answered_by = answered_by or None
    if status in _STATUS_ENDED:
        return CallStatus(CallState.ENDED, reason=_STATUS_ENDED[status], duration=duration,
                          answered=status == "completed", answered_by=answered_by)
    if status == "in-progress":
        return CallStatus(CallState.IN_PROGRESS, answered=True, answered_by=answered_by)
    if status == "ringing":
        return CallStatus(CallState.RINGING)
    return CallStatus(CallState.QUEUED)


def screen_event(leg_id: str, form: Mapping[str, str]) -> LegEvent:
    """The visitor's `<Number url>` fetch, after answering machine detection: a person (or detection could
    not tell) is the visitor's answer; a machine ends the leg as their voicemail."""
    answered_by = form.get("AnsweredBy")
    if answered_by in MACHINES:
        return machine_ended(leg_id, form.get("CallSid"), answered_by)
    return LegAnswered(leg_id, form.get("CallSid"))


def dial_event(leg_id: str, form: Mapping[str, str], answered_by: str | None = None) -> LegEnded:
    """The Dial action (https://www.twilio.com/docs/voice/twiml/dial#action): how the visitor's call ended.
    `DialBridged=false` with `completed`: the visitor's phone answered but was never connected to the
    manager (their voicemail, hung up on by our screen, or a hang-up during it) — never a conversation."""
    status = form.get("DialCallStatus", "failed")
    code = as_int(form.get("ErrorCode"))
    sid = form.get("DialCallSid")
    detail: str | None
    if answered_by in MACHINES:
        return machine_ended(leg_id, sid, answered_by)
    if code in NUMBER_REFUSED:
        reason, detail = EndReason.REJECTED, f"{NUMBER_REFUSED[code]} (error {code})"
    elif status in ("completed", "answered") and dial_bridged(form) is False:
        reason, detail = EndReason.NO_ANSWER, "answered, but never connected to the manager"
    else:
        reason = EndReason.COMPLETED if status == "answered" else _STATUS_ENDED.get(status, EndReason.FAILED)
        detail = _error_detail(form)
    return LegEnded(leg_id, sid, reason=reason, duration=as_int(form.get("DialCallDuration")), detail=detail,
                    bridged=dial_bridged(form))


def dial_bridged(form: Mapping[str, str]) -> bool | None:
    """Whether the Dial's two parties were connected (`DialBridged`); None where it is missing, and the
    visitor's duration must tell (`dialer.core.legs.judged_bridge`)."""
    bridged = form.get("DialBridged")
    return None if bridged is None else bridged.lower() == "true"


def _error_detail(form: Mapping[str, str]) -> str | None:
    code = form.get("ErrorCode")
    if not code:
        return None
    message = form.get("ErrorMessage") or "Twilio reported an error"
    return f"{message} (error {code})"
