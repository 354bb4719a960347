"""What a provider's answer to "how does this call stand?" reports about a leg whose callbacks went missing:
only what the leg's records lack; a machine's answer is voicemail; a visitor is answered only once a person
was detected."""

from __future__ import annotations

import pytest

from dialer.core.call_status import CallState, CallStatus, missing_reports
from dialer.core.events import LegAnswered, LegEnded, LegEvent, LegRinging
from dialer.core.states import EndReason, LegRole, LegStatus

M, V = LegRole.MANAGER, LegRole.VISITOR
RINGING = CallStatus(CallState.RINGING)
TALKING = CallStatus(CallState.IN_PROGRESS, answered=True, answered_by="human")
TALKED = CallStatus(CallState.ENDED, EndReason.COMPLETED, duration=95, answered=True, answered_by="human")


def reports(role: LegRole, known: LegStatus, status: CallStatus) -> list[tuple[type[LegEvent], object]]:
    return [(type(e), getattr(e, "reason", None)) for e in missing_reports("leg", "CA1", role, known, status)]


@pytest.mark.parametrize(("role", "known", "status", "expected"), [
    # Not ringing yet, or nothing new: nothing to report.
    (M, LegStatus.PENDING, CallStatus(CallState.QUEUED), []),
    (V, LegStatus.RINGING, RINGING, []),
    (M, LegStatus.ANSWERED, CallStatus(CallState.IN_PROGRESS, answered=True), []),
    (V, LegStatus.ANSWERED, TALKING, []),
    # The ringing and the answer that did not come.
    (V, LegStatus.INITIATED, RINGING, [(LegRinging, None)]),
    (M, LegStatus.RINGING, CallStatus(CallState.IN_PROGRESS, answered=True), [(LegAnswered, None)]),
    (V, LegStatus.RINGING, TALKING, [(LegAnswered, None)]),
    (V, LegStatus.RINGING, CallStatus(CallState.IN_PROGRESS, answered=True, answered_by="unknown"),
     [(LegAnswered, None)]),
    # A visitor's phone picked up while detection still decides: not answered yet.
    (V, LegStatus.RINGING, CallStatus(CallState.IN_PROGRESS, answered=True), []),
    # The end that did not come; with its answer first when that was lost too.
    (V, LegStatus.ANSWERED, TALKED, [(LegEnded, EndReason.COMPLETED)]),
    (V, LegStatus.RINGING, TALKED, [(LegAnswered, None), (LegEnded, EndReason.COMPLETED)]),
    (M, LegStatus.RINGING, CallStatus(CallState.ENDED, EndReason.NO_ANSWER), [(LegEnded, EndReason.NO_ANSWER)]),
    (V, LegStatus.RINGING, CallStatus(CallState.ENDED, EndReason.COMPLETED, answered=True),
     [(LegEnded, EndReason.COMPLETED)]),  # ended before detection decided: never a conversation
    # A machine: the visitor's voicemail, in progress or over; never an answer.
    (V, LegStatus.RINGING, CallStatus(CallState.IN_PROGRESS, answered=True, answered_by="machine_start"),
     [(LegEnded, EndReason.VOICEMAIL)]),
    (V, LegStatus.RINGING, CallStatus(CallState.ENDED, EndReason.COMPLETED, duration=4, answered=True,
                                      answered_by="machine_end_beep"), [(LegEnded, EndReason.VOICEMAIL)]),
    # A leg already over hears nothing more.
    (V, LegStatus.ENDED, TALKED, []),
])
def test_the_reports_a_missing_callback_would_have_made(
    role: LegRole, known: LegStatus, status: CallStatus, expected: list[tuple[type[LegEvent], object]]
) -> None:
    assert reports(role, known, status) == expected


def test_an_end_found_by_asking_keeps_its_length_and_a_voicemail_says_what_detection_said() -> None:
    (answered, ended) = missing_reports("leg", "CA1", V, LegStatus.RINGING, TALKED)
    assert isinstance(ended, LegEnded) and (ended.sid, ended.duration) == ("CA1", 95)
    assert answered == LegAnswered("leg", "CA1")
    machine = CallStatus(CallState.ENDED, EndReason.COMPLETED, duration=4, answered=True, answered_by="machine_start")
    (voicemail,) = missing_reports("leg", "CA1", V, LegStatus.RINGING, machine)
    assert isinstance(voicemail, LegEnded) and "machine_start" in (voicemail.detail or "")
