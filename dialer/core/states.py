"""The statuses a lead and a call leg move through."""

from __future__ import annotations

from enum import StrEnum


class LeadStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    CALLING_MANAGER = "calling_manager"
    CALLING_VISITOR = "calling_visitor"
    CONNECTED = "connected"
    COMPLETED = "completed"
    MISSED = "missed"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    FAILED = "failed"
    RECEIVED = "received"  # a message lead: kept for a human, no call placed


TERMINAL = frozenset(
    {
        LeadStatus.COMPLETED,
        LeadStatus.MISSED,
        LeadStatus.UNREACHABLE,
        LeadStatus.CANCELLED,
        LeadStatus.REJECTED,
        LeadStatus.FAILED,
    }
)
WAITING = frozenset({LeadStatus.SCHEDULED, LeadStatus.QUEUED})
CALLING = frozenset({LeadStatus.CALLING_MANAGER, LeadStatus.CALLING_VISITOR, LeadStatus.CONNECTED})
CANCELLABLE = WAITING | CALLING  # the visitor or a manager may still withdraw it (machine: Trigger.CANCEL)


class LegStatus(StrEnum):
    PENDING = "pending"  # written, not yet confirmed by the provider
    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"

    @property
    def rank(self) -> int:
        return _LEG_RANK[self]


_LEG_RANK = {s: i for i, s in enumerate(LegStatus)}


class EndReason(StrEnum):
    COMPLETED = "completed"  # answered, then hung up
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"  # hung up by us before it was answered
    TIMEOUT = "timeout"  # our own deadline passed; we hung up
    REJECTED = "rejected"  # the network refused the number (invalid, unreachable, not permitted)
    VOICEMAIL = "voicemail"  # a machine answered (answering machine detection): nobody was talked to
    ERROR = "error"  # the provider kept failing (authentication, rate limit, outage): calling cannot go on


class LegRole(StrEnum):
    MANAGER = "manager"
    VISITOR = "visitor"
