"""What the provider's reports do to a call leg, and which manager a lead holds.

A leg only moves forward (pending → initiated → ringing → answered → ended): a report that comes late,
twice or out of order changes nothing it should not. A manager's leg counts as accepted only when the
manager pressed 1 on the whisper. A manager is held by one lead at a time, from the moment the lead
dials them until their leg ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from dialer.core.events import (
    KeyPressed,
    LegAnswered,
    LegEnded,
    LegEvent,
    LegInitiated,
    LegLost,
    LegRinging,
    PriceKnown,
    RecordingReady,
)
from dialer.core.records import LeadRow, LegRow, ManagerRow
from dialer.core.states import EndReason, LegRole, LegStatus
from dialer.core.step import Step

# Reports that change the leg alone, never the lead's situation: the engine need not decide after them.
LEG_ONLY = (LegInitiated, LegRinging, PriceKnown, RecordingReady)


class ManagerTaken(Exception):
    """The machine chose a manager the step's own records say is busy: a bug, never a race (the step
    holds its managers' rows locked). The step is abandoned."""


def apply_report(  # noqa: C901 - one branch per kind of report
    step: Step, lead: LeadRow, leg: LegRow, event: LegEvent, party: str, managers: list[ManagerRow]
) -> bool:
    """Record what the provider said about a leg. True when the lead's situation may have changed."""
    now = step.now
    if isinstance(event, LegLost):
        reason = EndReason.COMPLETED if leg.answered_at is not None else EndReason.FAILED
        event = LegEnded(event.leg_id, event.sid, reason=reason, detail=event.detail)
    if event.sid and not leg.provider_sid:
        leg.provider_sid = event.sid
    status = LegStatus(leg.status)
    if isinstance(event, PriceKnown):
        leg.price, leg.price_unit = event.price, event.unit
        return False
    if isinstance(event, RecordingReady):
        if leg.recording_url:
            return False  # a duplicated or late report, or the recording was looked up first (`jobs`)
        leg.recording_url = event.url
        step.timeline(lead.id, "recording", f"recording of the {party} leg is ready", leg_id=leg.id)
        return False
    if status is LegStatus.ENDED:
        if isinstance(event, LegEnded) and leg.duration is None and event.duration is not None:
            leg.duration = event.duration
        return False  # a late or duplicated report about a leg that is over
    if isinstance(event, LegInitiated):
        if status.rank < LegStatus.RINGING.rank:
            # The ring deadline counts from here: the call may have waited in the provider's queue.
            leg.status, leg.starts_at = LegStatus.INITIATED, now
        return False
    if isinstance(event, LegRinging):
        if status.rank < LegStatus.RINGING.rank:
            leg.status = LegStatus.RINGING
            step.timeline(lead.id, "leg", f"{party}: ringing", leg_id=leg.id)
        return False
    if isinstance(event, LegAnswered):
        if status.rank < LegStatus.ANSWERED.rank:
            leg.status, leg.answered_at = LegStatus.ANSWERED, now
            step.timeline(lead.id, "leg", f"{party}: answered", leg_id=leg.id)
            return True
        return False
    if isinstance(event, KeyPressed):
        if leg.role == LegRole.MANAGER and not leg.accepted:
            leg.accepted = event.digits.startswith("1")
            if status.rank < LegStatus.ANSWERED.rank:
                leg.status, leg.answered_at = LegStatus.ANSWERED, now
            step.timeline(lead.id, "leg", f"{party}: pressed {event.digits or 'nothing'}", leg_id=leg.id)
            return leg.accepted
        return False
    if isinstance(event, LegEnded):
        event = judged_bridge(leg, event)
        end_leg(leg, event.reason, now, event.duration)
        leg.end_detail = event.detail
        text = f"{party}: ended ({event.reason.replace('_', ' ')}"
        if leg.answered_at and event.duration and event.reason is EndReason.COMPLETED:
            # Only the visitor's end knows they were bridged; a manager's call also held the whisper.
            text += f", talked {event.duration} s)" if leg.role == LegRole.VISITOR else f", {event.duration} s)"
        else:
            text += ")"
        if event.detail:
            text += f": {event.detail}"
        step.timeline(lead.id, "leg", text, leg_id=leg.id)
        if release_manager(managers, leg.manager_id, lead.id):
            step.freed.add(lead.id)
        return True
    return False


# The longest a visitor's answered call lasts without being bridged to the manager: answering machine
# detection's verdict (Twilio's `machineDetectionTimeout` on the visitor's <Number>: 5 s,
# `dialer/telephony/twiml.py`; the simulator's 2 s), then the screen's answer (with recording on, the
# notice said to the visitor: about 3 s), and a margin. A test keeps the providers below it.
UNBRIDGED_SECONDS = 12
NOT_CONNECTED = "answered, but never connected to the manager"


def judged_bridge(leg: LegRow, event: LegEnded) -> LegEnded:
    """A visitor's call that ended answered was a conversation only if it was bridged to the manager.
    The Dial's own report says so (`bridged`); a report that cannot tell (a status callback, the call as
    fetched) is judged by its duration: no longer than detection and the screen take means never bridged
    (the manager hung up in between, or the visitor did). Without any duration the answer stands."""
    if leg.role != LegRole.VISITOR or event.reason is not EndReason.COMPLETED or event.bridged:
        return event
    if event.bridged is None and (event.duration is None or event.duration > UNBRIDGED_SECONDS):
        return event
    return replace(event, reason=EndReason.NO_ANSWER, detail=event.detail or NOT_CONNECTED)


def recordings_to_find(legs: list[LegRow]) -> list[tuple[LegRow, str]]:
    """Visitor legs that talked and ended in this step with no recording yet, each with the call that
    dialed them (the manager's, where the provider keeps a bridged call's recording): where the site
    records calls, their recording is looked up should its report not come."""
    calls = {leg.id: leg.provider_sid for leg in legs}
    found = []
    for leg in legs:
        just_ended = leg.status == LegStatus.ENDED and "status" in leg.changes()
        parent = calls.get(leg.bridged_to or "")
        if leg.role == LegRole.VISITOR and just_ended and leg.end_reason == EndReason.COMPLETED and not leg.recording_url and parent:
            found.append((leg, parent))
    return found


def end_leg(leg: LegRow, reason: EndReason, now: datetime, duration: int | None = None) -> None:
    """The leg is over; without a duration from the provider, it talked from its answer until `now`."""
    leg.status, leg.end_reason, leg.ended_at = LegStatus.ENDED, reason, now
    if duration is not None:
        leg.duration = duration
    elif leg.answered_at is not None:
        leg.duration = round((now - leg.answered_at).total_seconds())


def claim_manager(managers: list[ManagerRow], manager_id: int, lead_id: str) -> None:
    """The lead is about to ring this manager; raises `ManagerTaken` when another lead holds them."""
    manager = next((m for m in managers if m.id == manager_id), None)
    if manager is None or manager.busy_lead_id not in (None, lead_id):
        raise ManagerTaken(manager_id)
    manager.busy_lead_id = lead_id


def release_manager(managers: list[ManagerRow], manager_id: int | None, lead_id: str) -> bool:
    """The lead's leg to this manager ended. True when the lead held them (they are free now)."""
    for manager in managers:
        if manager.id == manager_id and manager.busy_lead_id == lead_id:
            manager.busy_lead_id = None
            return True
    return False


def who(leg: LegRow, names: Mapping[int, str]) -> str:
    """The party a leg rings, as the timeline names it: "visitor", "manager Anna"."""
    if leg.role == LegRole.VISITOR:
        return "visitor"
    name = names.get(leg.manager_id or -1)
    return f"manager {name}" if name else "manager"
