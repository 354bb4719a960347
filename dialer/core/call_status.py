"""How a call stands when the provider is asked (`CallStatus`), and the reports that answer adds to what a
leg records (`missing_reports`): what its lost callbacks would have said.

The engine asks in two places, with one meaning for the answer: before a deadline cuts a call it has
heard nothing about (`dialer/engine/dialing.py`), and when reconciling legs whose end may never be
reported (`dialer/engine/reconcile.py`). A machine's answer (answering machine detection) is the
visitor's voicemail wherever it is found, never a conversation; a visitor's call counts as answered only
once a person was detected.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dialer.core.events import LegAnswered, LegEnded, LegEvent, LegRinging
from dialer.core.states import EndReason, LegRole, LegStatus

# Answering machine detection's verdicts that are not a person, in Twilio's words (`AnsweredBy`; the
# simulator uses them too): https://www.twilio.com/docs/voice/answering-machine-detection . `unknown`
# (detection ran out of time) is taken for a person: hanging up on somebody who said "hello" is worse
# than a manager hearing a greeting.
MACHINES = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})


class CallState(StrEnum):
    QUEUED = "queued"  # placed, not known to ring yet (in the provider's queue, or being dialed)
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"  # picked up (by a person or a machine) and going on
    ENDED = "ended"


@dataclass(frozen=True)
class CallStatus:
    """What the provider says of a call it knows, now."""

    state: CallState
    reason: EndReason | None = None  # once ended: how
    duration: int | None = None  # once ended: seconds from the answer to the end
    answered: bool = False  # somebody or something picked up (now, or before it ended)
    # Answering machine detection's verdict (`human`, `unknown`, or one of MACHINES); None where it did
    # not run (managers' calls) or has not decided yet.
    answered_by: str | None = None
    bridged: bool | None = None  # a visitor's call: bridged to the manager; None when the provider cannot tell

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    @property
    def machine(self) -> bool:
        return self.answered_by in MACHINES


def machine_ended(leg_id: str, sid: str | None, answered_by: str | None) -> LegEnded:
    """The leg answered by a machine: ended as voicemail, never connected."""
    return LegEnded(leg_id, sid, reason=EndReason.VOICEMAIL,
                    detail=f"answering machine detection: {answered_by} (not connected)")


def missing_reports(
    leg_id: str, sid: str, role: LegRole, known: LegStatus, status: CallStatus
) -> tuple[LegEvent, ...]:
    """The reports the provider's answer `status` adds to a leg whose records say `known`, in order:
    nothing when the leg already knows as much. A visitor's call is answered only once a person was
    detected (while detection decides, there is nothing to report); a machine ends it as voicemail."""
    if known is LegStatus.ENDED:
        return ()
    if status.machine and status.state in (CallState.IN_PROGRESS, CallState.ENDED):
        return (machine_ended(leg_id, sid, status.answered_by),)
    screened = role is LegRole.MANAGER or status.answered_by is not None  # a visitor's: a person, detected
    reports: list[LegEvent] = []
    if status.state is CallState.RINGING and known.rank < LegStatus.RINGING.rank:
        reports.append(LegRinging(leg_id, sid))
    elif status.state is CallState.IN_PROGRESS and screened and known.rank < LegStatus.ANSWERED.rank:
        reports.append(LegAnswered(leg_id, sid))
    elif status.state is CallState.ENDED:
        reason = status.reason or EndReason.COMPLETED
        if status.answered and screened and reason is EndReason.COMPLETED and known.rank < LegStatus.ANSWERED.rank:
            reports.append(LegAnswered(leg_id, sid))  # its answer went unreported too: it was a conversation
        reports.append(LegEnded(leg_id, sid, reason=reason, duration=status.duration, bridged=status.bridged))
    return tuple(reports)
