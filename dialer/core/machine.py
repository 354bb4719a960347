"""The lead state machine: pure, no I/O and no clock.

`decide(lead, trigger, now, policy)` looks at a lead as the database holds it (its legs already updated by
whatever the provider reported) and returns what to do next: the new status, the actions to perform and
the next wake-up time. It judges the situation rather than the single event, so duplicated or
out-of-order provider callbacks cannot push a lead the wrong way.

Its length (a little over 400 lines): every transition of the lead is here, in one place, on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from dialer.core.states import CALLING, TERMINAL, WAITING, EndReason, LeadStatus, LegRole, LegStatus


@dataclass(frozen=True)
class Policy:
    ring_timeout: int = 20  # seconds a phone rings before we give up on it
    whisper_seconds: int = 40  # how long a manager may listen to the whisper before pressing 1
    visitor_retries: int = 2  # further attempts after the visitor did not answer
    retry_delay: int = 180  # seconds between those attempts
    max_call_seconds: int = 4 * 3600  # a bridged call is ended after this long
    grace: int = 10  # margin over the provider's own timeouts before our deadline fires
    check_seconds: int = 10  # after a deadline with calls still live: how long the provider has to answer us
    connected_check: int = 10 * 60  # a conversation is asked about this often (its end may go unreported)
    confirm_after: int = 10 * 60  # a callback further away than this is confirmed by text message
    remind_before: int = 30 * 60  # and reminded this long before it, when it was booked well ahead


@dataclass(frozen=True)
class ManagerView:
    id: int
    phone: str
    free: bool = True  # not on another lead's call
    on_duty: bool = True  # inside their working hours for a whole ring


@dataclass(frozen=True)
class LegView:
    id: str
    attempt: int
    role: LegRole
    status: LegStatus
    manager_id: int | None = None
    accepted: bool = False
    end_reason: EndReason | None = None
    detail: str | None = None  # what the provider said when the leg ended, if anything
    # When the provider starts placing the call (the pacer's slot, the provider's queue, its "initiated"
    # report); None: when it was decided. A manager's ring deadline counts from here.
    starts_at: datetime | None = None
    checked: bool = False  # the provider was asked about it after a deadline passed without word
    answered_at: datetime | None = None
    has_sid: bool = False  # the provider's call id is known

    @property
    def active(self) -> bool:
        return self.status is not LegStatus.ENDED


@dataclass(frozen=True)
class LeadView:
    id: str
    status: LeadStatus
    attempt: int
    phone: str
    wake_at: datetime | None
    managers: tuple[ManagerView, ...]  # active managers, in hunt order
    legs: tuple[LegView, ...] = ()
    preferred_manager_id: int | None = None  # offered first: the visitor's last manager, or "call back now"
    # The earliest moment a ring may start within every window (visitor, site, some manager's hours);
    # None when no such moment exists within the horizon. Computed by the engine from `now`.
    allowed_at: datetime | None = None
    # When a manager now off duty comes on duty (None: none will within the horizon): a queued lead
    # looks again then. Otherwise it waits for a manager to become free, which wakes it (the engine).
    duty_from: datetime | None = None
    routing: str = "sequential"  # sequential | simultaneous | round_robin
    rotation: int = 0  # round robin: how many places to rotate the manager list
    scheduled_for: datetime | None = None  # when we promised to call
    confirmed: bool = False  # the visitor was sent that time
    reminded: bool = False

    def legs_now(self, role: LegRole) -> list[LegView]:
        return [leg for leg in self.legs if leg.attempt == self.attempt and leg.role is role]


class Trigger(StrEnum):
    WAKE = "wake"  # the lead's wake-up time has come
    QUEUE = "queue"  # a manager of its site may be free: a queued lead looks for one
    LEG = "leg"  # one of its legs changed
    CANCEL = "cancel"  # the visitor or a manager withdrew the request
    CALL_BACK = "call_back"  # a manager pressed "call back now" on a missed lead or a message
    RESCHEDULE = "reschedule"  # the visitor picked a new time after a missed or unreachable call


@dataclass(frozen=True)
class PlaceCall:
    role: LegRole
    step: str
    to: str
    timeout: int
    manager_id: int | None = None
    bridge_leg_id: str | None = None  # the visitor is dialed into this manager's call


@dataclass(frozen=True)
class Hangup:
    leg_id: str
    reason: EndReason = EndReason.CANCELED
    say: str | None = None


@dataclass(frozen=True)
class Check:
    """Ask the provider how this call stands: its callbacks did not come before our deadline. What it
    answers comes back as the provider's report would have."""

    leg_id: str


@dataclass(frozen=True)
class SendText:
    """A text message to the visitor; the engine words it (`dialer/core/notices.py`)."""

    kind: str  # confirm | reminder | missed | unreachable


Action = PlaceCall | Hangup | SendText | Check


@dataclass(frozen=True)
class Decision:
    status: LeadStatus
    wake_at: datetime | None
    attempt: int
    actions: tuple[Action, ...] = ()
    notes: tuple[str, ...] = ()
    outcome: str | None = None
    scheduled_for: datetime | None = None  # set with status scheduled: the promised time


class IllegalMove(Exception):
    """A trigger that makes no sense for the lead's status."""


def unchanged(lead: LeadView) -> Decision:
    return Decision(lead.status, lead.wake_at, lead.attempt)


def admit(*, scheduled_for: datetime | None, allowed_at: datetime | None, now: datetime) -> tuple[LeadStatus, datetime]:
    """Where a freshly accepted call request starts, and when it is promised.

    The engine takes it from there at once: it confirms a scheduled time by text, or starts the hunt.
    """
    if scheduled_for is not None and scheduled_for > now:
        return LeadStatus.SCHEDULED, scheduled_for
    if allowed_at is not None and allowed_at > now:
        return LeadStatus.SCHEDULED, allowed_at
    return LeadStatus.QUEUED, now


CALLABLE_AGAIN = frozenset({LeadStatus.MISSED, LeadStatus.UNREACHABLE, LeadStatus.RECEIVED, LeadStatus.COMPLETED})


def decide(lead: LeadView, trigger: Trigger, now: datetime, policy: Policy) -> Decision:
    if trigger is Trigger.CALL_BACK:
        if lead.status not in CALLABLE_AGAIN:
            raise IllegalMove(f"expected a missed, unreachable, received or completed lead, got {lead.status}")
        return Decision(LeadStatus.QUEUED, now, lead.attempt + 1, notes=("call back now: requested by a manager",))
    if trigger is Trigger.RESCHEDULE:
        if lead.status not in CALLABLE_AGAIN or lead.scheduled_for is None:
            raise IllegalMove(f"expected a missed or unreachable lead and a new time, got {lead.status}")
        return _schedule(replace(lead, attempt=lead.attempt + 1, confirmed=False, reminded=False),
                         lead.scheduled_for, now, policy, note="the visitor picked a new time")
    if lead.status in TERMINAL or lead.status is LeadStatus.RECEIVED:
        return unchanged(lead)
    if trigger is Trigger.CANCEL:
        return _cancel(lead)
    if trigger is Trigger.WAKE:
        if lead.wake_at is None or now < lead.wake_at:
            return unchanged(lead)  # a stale or early wake-up: someone already moved this lead on
        if lead.status is LeadStatus.SCHEDULED and lead.scheduled_for is not None and now < lead.scheduled_for:
            return _before_the_call(lead, now, policy)
        if lead.status in WAITING:
            return _hunt(lead, now, policy)
        return _deadline_passed(lead, now, policy)
    if trigger is Trigger.QUEUE:
        return _hunt(lead, now, policy) if lead.status is LeadStatus.QUEUED else unchanged(lead)
    if trigger is Trigger.LEG:
        return _on_leg_change(lead, now, policy)
    raise IllegalMove(f"expected a wake, queue, leg or cancel trigger, got {trigger!r}")


def _schedule(
    lead: LeadView,
    when: datetime,
    now: datetime,
    policy: Policy,
    hangups: tuple[Hangup, ...] = (),
    note: str = "",
) -> Decision:
    """Promise a call at `when`: confirm it by text when it is a while away, and plan the reminder."""
    texts: tuple[SendText, ...] = ()
    far = (when - now).total_seconds() > policy.confirm_after
    if far and not lead.confirmed:
        texts = (SendText("confirm"),)
    remind_at = when - timedelta(seconds=policy.remind_before)
    wants_reminder = not lead.reminded and (when - now).total_seconds() >= 2 * policy.remind_before
    wake = remind_at if wants_reminder and remind_at > now else when
    notes = (note,) if note else ()
    return Decision(
        LeadStatus.SCHEDULED, wake, lead.attempt, (*hangups, *texts), notes, scheduled_for=when
    )


def _before_the_call(lead: LeadView, now: datetime, policy: Policy) -> Decision:
    """A wake-up before the promised time: confirm it (just accepted) or send the reminder."""
    assert lead.scheduled_for is not None
    if not lead.confirmed and (lead.scheduled_for - now).total_seconds() > policy.confirm_after:
        return _schedule(lead, lead.scheduled_for, now, policy)
    texts = () if lead.reminded or not lead.confirmed else (SendText("reminder"),)
    return Decision(LeadStatus.SCHEDULED, lead.scheduled_for, lead.attempt, texts, scheduled_for=lead.scheduled_for)


def _hunt(
    lead: LeadView, now: datetime, policy: Policy, hangups: tuple[Hangup, ...] = (), why: str | None = None
) -> Decision:
    """Ring the next manager (or, ringing simultaneously, every free one) not yet rung in this attempt."""
    if lead.allowed_at is None:
        note = "no calling hours in the coming weeks"
        return Decision(LeadStatus.MISSED, None, lead.attempt, (*hangups, SendText("missed")), (note,), note)
    if lead.allowed_at > now:
        when = lead.allowed_at
        return _schedule(lead, when, now, policy, hangups, note="outside calling hours")
    tried = {leg.manager_id for leg in lead.legs_now(LegRole.MANAGER)}
    untried = [m for m in _hunt_order(lead) if m.id not in tried and m.on_duty]
    if not untried:
        note = why or ("no manager answered" if lead.managers else "the site has no active manager")
        return Decision(LeadStatus.MISSED, None, lead.attempt, (*hangups, SendText("missed")), (note,), note)
    free = [m for m in untried if m.free]
    if not free:
        # Waiting in the queue, with no wake-up of its own but a manager coming on duty: a manager who
        # becomes free wakes the site's queue, oldest first (the engine steps a site's queued leads in
        # queue order, so a free manager takes the longest-waiting lead that can take them).
        return Decision(
            LeadStatus.QUEUED,
            lead.duty_from,
            lead.attempt,
            hangups,
            () if lead.status is LeadStatus.QUEUED else ("every manager is busy: waiting in the queue",),
        )
    chosen = free if lead.routing == "simultaneous" else free[:1]
    notes = (why,) if why else ()
    calls = tuple(
        PlaceCall(
            LegRole.MANAGER,
            step=f"a{lead.attempt}:m{m.id}",
            to=m.phone,
            timeout=policy.ring_timeout,
            manager_id=m.id,
        )
        for m in chosen
    )
    deadline = now + timedelta(seconds=_manager_window(policy))
    return Decision(LeadStatus.CALLING_MANAGER, deadline, lead.attempt, (*hangups, *calls), notes)


def _manager_window(policy: Policy) -> int:
    """Seconds a manager's leg may take from the start of its call: ring, whisper, and a margin."""
    return policy.ring_timeout + policy.whisper_seconds + policy.grace


def _not_started_in_time(lead: LeadView, now: datetime, policy: Policy) -> Decision | None:
    """The manager deadline fired, but some manager's call started late (it waited for the account's
    calls-per-second pace, in our pacer or the provider's queue): their window counts from that start.
    Legs whose window is over are hung up; the lead waits for the others."""
    window = timedelta(seconds=_manager_window(policy))
    active = [leg for leg in lead.legs_now(LegRole.MANAGER) if leg.active]
    later = [leg.starts_at + window for leg in active if leg.starts_at is not None and leg.starts_at + window > now]
    if not later:
        return None
    late = [leg for leg in active if leg.starts_at is None or leg.starts_at + window <= now]
    hangups = tuple(Hangup(leg.id, EndReason.TIMEOUT) for leg in late)
    notes = ("no word from the telephony provider in time: hung up",) if hangups else ()
    return Decision(LeadStatus.CALLING_MANAGER, max(later), lead.attempt, hangups, notes)


def _hunt_order(lead: LeadView) -> list[ManagerView]:
    order = list(lead.managers)
    if lead.routing == "round_robin" and order:
        turn = lead.rotation % len(order)
        order = order[turn:] + order[:turn]
    # The preferred manager first; sorting is stable, so the rest keep their order.
    return sorted(order, key=lambda m: m.id != lead.preferred_manager_id)


def _on_leg_change(lead: LeadView, now: datetime, policy: Policy) -> Decision:
    fatal = _cannot_go_on(lead)
    if fatal is not None:
        return fatal
    managers = lead.legs_now(LegRole.MANAGER)
    visitors = lead.legs_now(LegRole.VISITOR)
    visitor = visitors[-1] if visitors else None
    accepted = next((leg for leg in managers if leg.accepted and leg.active), None)

    if lead.status is LeadStatus.CALLING_MANAGER:
        if accepted is not None:
            others = tuple(Hangup(leg.id) for leg in managers if leg.active and leg is not accepted)
            call = PlaceCall(
                LegRole.VISITOR,
                step=f"a{lead.attempt}:v:m{accepted.manager_id}",
                to=lead.phone,
                timeout=policy.ring_timeout,
                bridge_leg_id=accepted.id,
            )
            deadline = now + timedelta(seconds=policy.ring_timeout + policy.grace)
            return Decision(
                LeadStatus.CALLING_VISITOR,
                deadline,
                lead.attempt,
                (*others, call),
                ("a manager pressed 1: dialing the visitor",),
            )
        if not any(leg.active for leg in managers):
            return _hunt(lead, now, policy)
        return unchanged(lead)

    if lead.status is LeadStatus.CALLING_VISITOR:
        if visitor is not None and visitor.status is LegStatus.ANSWERED:
            return Decision(
                LeadStatus.CONNECTED, _next_look(visitor, now, policy), lead.attempt,
                notes=("visitor answered: connecting them to the manager",)
            )
        if visitor is not None and visitor.end_reason is EndReason.COMPLETED:
            # The visitor's call ended `completed`: they were connected and talked (a provider says so
            # only of a bridged call), though the report of their answer came late, or not at all (held
            # while the database was away). It is a conversation, never a reason to call them again.
            hangups = tuple(Hangup(leg.id, EndReason.COMPLETED) for leg in (*managers, *visitors) if leg.active)
            return Decision(LeadStatus.COMPLETED, None, lead.attempt, hangups,
                            ("visitor answered and the call ended",), outcome="talked")
        cut_short = visitor is not None and visitor.end_reason is EndReason.CANCELED
        if accepted is None or cut_short:
            # The manager who pressed 1 hung up before the visitor was connected: stop dialing and find
            # another manager. Whichever report comes first (the manager's hang-up, or the visitor's call
            # cut short by it: `canceled`), the outcome is one.
            hangups = tuple(Hangup(leg.id) for leg in (*managers, *visitors) if leg.active)
            return _hunt(lead, now, policy, hangups, MANAGER_LEFT)
        if visitor is not None and not visitor.active:
            return _visitor_not_reached(lead, now, policy, managers, visitor)
        return unchanged(lead)

    if lead.status is LeadStatus.CONNECTED:
        if visitor is not None and visitor.end_reason not in (None, EndReason.COMPLETED):
            # Answered, but never connected after all (a machine's answer reported late, a bridge cut
            # short by the manager's hang-up): nobody talked.
            if accepted is None or visitor.end_reason is EndReason.CANCELED:
                return _hunt(lead, now, policy, tuple(Hangup(leg.id) for leg in managers if leg.active),
                             MANAGER_LEFT)
            return _visitor_not_reached(lead, now, policy, managers, visitor)
        if visitor is not None and visitor.active and accepted is None:
            # The manager's call is over, the visitor's end not reported yet: whether the two were ever
            # connected (the manager may have hung up in the instant between the visitor's answer and the
            # bridge) is for the visitor's end to say. Asked about if it does not come soon.
            soon = now + timedelta(seconds=policy.check_seconds)
            wake = min(lead.wake_at, soon) if lead.wake_at is not None and lead.wake_at > now else soon
            return Decision(LeadStatus.CONNECTED, wake, lead.attempt)
        live = [leg for leg in (*managers, *visitors) if leg.active]
        bridged = [leg for leg in (accepted, visitor) if leg is not None]
        if len(bridged) < 2 or any(not leg.active for leg in bridged):
            return Decision(
                LeadStatus.COMPLETED,
                None,
                lead.attempt,
                tuple(Hangup(leg.id, EndReason.COMPLETED) for leg in live),
                ("call ended",),
                outcome="talked",
            )
        return unchanged(lead)

    return unchanged(lead)


MANAGER_LEFT = "the manager hung up before the visitor was connected"


def _visitor_not_reached(
    lead: LeadView, now: datetime, policy: Policy, managers: list[LegView], visitor: LegView
) -> Decision:
    """The visitor's call ended without a conversation (no answer, busy, their voicemail): the manager
    hears one sentence, and the visitor is tried again later or given up on."""
    what = {
        EndReason.VOICEMAIL: "The visitor's voicemail answered.",
        EndReason.FAILED: "The visitor's phone could not be reached.",
        EndReason.BUSY: "The visitor's line was busy.",
    }.get(visitor.end_reason or EndReason.NO_ANSWER, "The visitor did not answer.")
    then = (f"We will try again in {max(1, policy.retry_delay // 60)} minutes."
            if lead.attempt <= policy.visitor_retries else "Goodbye.")
    hangups = tuple(Hangup(leg.id, say=f"{what} {then}") for leg in managers if leg.active)
    return _retry_or_give_up(lead, now, policy, hangups, visitor.end_reason)


def _cannot_go_on(lead: LeadView) -> Decision | None:
    """Calling again cannot help: the provider is unusable, or the network refused the visitor's number.

    (A refused manager number only takes that manager out of the hunt.)
    """
    if lead.status not in CALLING:
        return None
    for leg in lead.legs_now(LegRole.MANAGER) + lead.legs_now(LegRole.VISITOR):
        if leg.end_reason is EndReason.ERROR:
            why = f"the telephony provider failed: {leg.detail or 'no reason given'}"
        elif leg.end_reason is EndReason.REJECTED and leg.role is LegRole.VISITOR:
            why = f"the visitor's number cannot be called: {leg.detail or 'refused by the network'}"
        else:
            continue
        say = "The visitor's number cannot be called. Goodbye." if leg.role is LegRole.VISITOR else None
        hangups = tuple(Hangup(other.id, say=say if other.accepted else None) for other in lead.legs if other.active)
        return Decision(LeadStatus.FAILED, None, lead.attempt, hangups, (why,), outcome=why)
    return None


def _retry_or_give_up(
    lead: LeadView,
    now: datetime,
    policy: Policy,
    hangups: tuple[Hangup, ...],
    reason: EndReason | None,
) -> Decision:
    if reason is EndReason.VOICEMAIL:
        why = "the visitor's voicemail answered (not counted as a conversation)"
    else:
        why = f"visitor did not answer ({reason or 'no answer'})"
    if lead.attempt <= policy.visitor_retries:
        wake = now + timedelta(seconds=policy.retry_delay)
        return Decision(
            LeadStatus.SCHEDULED,
            wake,
            lead.attempt + 1,
            hangups,
            (f"{why}: attempt {lead.attempt + 1} in {policy.retry_delay} s",),
            scheduled_for=wake,
        )
    return Decision(
        LeadStatus.UNREACHABLE,
        None,
        lead.attempt,
        (*hangups, SendText("unreachable")),
        (f"{why} after {lead.attempt} attempts",),
        outcome=why,
    )


def _deadline_passed(lead: LeadView, now: datetime, policy: Policy) -> Decision:
    """Our own deadline fired while calling: a provider never reported back. A manager's call that
    started late (paced) has its own window; otherwise the provider is asked first how the calls stand
    (a lost callback must not cut a live call); if it still has not told us by the next deadline, hang up
    and move on."""
    if lead.status is LeadStatus.CALLING_MANAGER:
        waiting = _not_started_in_time(lead, now, policy)
        if waiting is not None:
            return waiting
    live = [leg for leg in lead.legs if leg.active]
    unasked = [leg for leg in live if not leg.checked and (leg.has_sid or leg.role is LegRole.VISITOR)]
    if lead.status in (LeadStatus.CALLING_MANAGER, LeadStatus.CALLING_VISITOR) and unasked:
        return Decision(
            lead.status, now + timedelta(seconds=policy.check_seconds), lead.attempt,
            tuple(Check(leg.id) for leg in unasked),
            ("no word from the telephony provider in time: asking it how the calls stand",),
        )
    hangups = tuple(Hangup(leg.id, EndReason.TIMEOUT) for leg in live)
    ended = replace(
        lead,
        legs=tuple(
            replace(leg, status=LegStatus.ENDED, end_reason=EndReason.TIMEOUT) if leg.active else leg
            for leg in lead.legs
        ),
    )
    if lead.status is LeadStatus.CONNECTED:
        visitor = next((leg for leg in reversed(lead.legs_now(LegRole.VISITOR)) if leg.answered_at), None)
        limit = _time_limit(visitor, now, policy)
        if live and now < limit:
            # Not the time limit yet: the end of the conversation may have gone unreported. Ask (soon
            # again while only the visitor's call is left: whether they were connected is still open).
            alone = all(leg.role is LegRole.VISITOR for leg in live)
            look = min(limit, now + timedelta(seconds=policy.check_seconds)) if alone else _next_look(visitor, now, policy)
            return Decision(LeadStatus.CONNECTED, look, lead.attempt, tuple(Check(leg.id) for leg in live))
    if lead.status is LeadStatus.CALLING_MANAGER:
        decision = _hunt(ended, now, policy, hangups)
    elif lead.status is LeadStatus.CALLING_VISITOR:
        decision = _retry_or_give_up(ended, now, policy, hangups, EndReason.TIMEOUT)
    else:
        return Decision(
            LeadStatus.COMPLETED, None, lead.attempt, hangups, ("call ended at the time limit",), "talked"
        )
    return replace(decision, notes=("no word from the telephony provider in time: hung up", *decision.notes))


def _time_limit(visitor: LegView | None, now: datetime, policy: Policy) -> datetime:
    start = visitor.answered_at if visitor is not None and visitor.answered_at is not None else now
    return start + timedelta(seconds=policy.max_call_seconds)


def _next_look(visitor: LegView | None, now: datetime, policy: Policy) -> datetime:
    """When a connected lead is next looked at: the time limit, or sooner to ask how the call stands."""
    return min(_time_limit(visitor, now, policy), now + timedelta(seconds=policy.connected_check))


def _cancel(lead: LeadView) -> Decision:
    if lead.status in CALLING or lead.status in WAITING:
        hangups = tuple(Hangup(leg.id) for leg in lead.legs if leg.active)
        return Decision(LeadStatus.CANCELLED, None, lead.attempt, hangups, ("cancelled",), "cancelled")
    raise IllegalMove(f"expected a waiting or calling lead, got {lead.status}")


__all__ = [
    "Action",
    "Check",
    "Decision",
    "Hangup",
    "IllegalMove",
    "LeadView",
    "LegView",
    "ManagerView",
    "PlaceCall",
    "Policy",
    "SendText",
    "Trigger",
    "admit",
    "decide",
]
