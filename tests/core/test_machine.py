"""The pure state machine: every path of the hunt, with the clock passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dialer.core.machine import (
    Hangup,
    IllegalMove,
    LeadView,
    LegView,
    ManagerView,
    PlaceCall,
    Policy,
    SendText,
    Trigger,
    admit,
    decide,
    unchanged,
)
from dialer.core.states import EndReason, LeadStatus, LegRole, LegStatus

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
P = Policy()
MANAGERS = (ManagerView(1, "+1"), ManagerView(2, "+2"), ManagerView(3, "+3"))


def lead(status: LeadStatus = LeadStatus.QUEUED, *legs: LegView, attempt: int = 1, **kw: object) -> LeadView:
    base = LeadView("L", status, attempt, "+48501234567", NOW, MANAGERS, tuple(legs), allowed_at=NOW)
    return replace(base, **kw)  # type: ignore[arg-type]


def mleg(manager: int, status: LegStatus = LegStatus.RINGING, *, accepted: bool = False, attempt: int = 1,
         reason: EndReason | None = None) -> LegView:
    return LegView(f"m{manager}a{attempt}", attempt, LegRole.MANAGER, status, manager, accepted, reason)


def vleg(status: LegStatus = LegStatus.RINGING, reason: EndReason | None = None, attempt: int = 1) -> LegView:
    return LegView(f"v{attempt}", attempt, LegRole.VISITOR, status, None, False, reason)


def calls(decision) -> list[PlaceCall]:  # type: ignore[no-untyped-def]
    return [a for a in decision.actions if isinstance(a, PlaceCall)]


def test_a_new_request_is_queued_now_or_scheduled_for_its_time() -> None:
    assert admit(scheduled_for=None, allowed_at=NOW, now=NOW) == (LeadStatus.QUEUED, NOW)
    later = NOW + timedelta(hours=2)
    assert admit(scheduled_for=later, allowed_at=NOW, now=NOW) == (LeadStatus.SCHEDULED, later)
    morning = NOW + timedelta(hours=9)
    assert admit(scheduled_for=None, allowed_at=morning, now=NOW) == (LeadStatus.SCHEDULED, morning)


def test_the_hunt_starts_with_the_first_manager() -> None:
    d = decide(lead(), Trigger.WAKE, NOW, P)
    assert d.status is LeadStatus.CALLING_MANAGER
    assert [(c.manager_id, c.step, c.timeout) for c in calls(d)] == [(1, "a1:m1", 20)]
    assert d.wake_at == NOW + timedelta(seconds=P.ring_timeout + P.whisper_seconds + P.grace)


@pytest.mark.parametrize("reason", [EndReason.NO_ANSWER, EndReason.BUSY, EndReason.FAILED, EndReason.COMPLETED])
def test_a_manager_who_does_not_press_1_passes_to_the_next(reason: EndReason) -> None:
    # COMPLETED without accepted is the voicemail case: answered, listened, never pressed 1.
    d = decide(lead(LeadStatus.CALLING_MANAGER, mleg(1, LegStatus.ENDED, reason=reason)), Trigger.LEG, NOW, P)
    assert [c.manager_id for c in calls(d)] == [2]


def test_an_answered_manager_who_has_not_pressed_1_is_not_a_winner() -> None:
    d = decide(lead(LeadStatus.CALLING_MANAGER, mleg(1, LegStatus.ANSWERED)), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.CALLING_MANAGER and not d.actions


def test_pressing_1_dials_the_visitor_into_that_managers_call() -> None:
    d = decide(lead(LeadStatus.CALLING_MANAGER, mleg(1, LegStatus.ANSWERED, accepted=True)), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.CALLING_VISITOR
    (call,) = calls(d)
    assert (call.role, call.to, call.bridge_leg_id) == (LegRole.VISITOR, "+48501234567", "m1a1")


def test_list_exhausted_is_missed() -> None:
    legs = [mleg(i, LegStatus.ENDED, reason=EndReason.NO_ANSWER) for i in (1, 2, 3)]
    d = decide(lead(LeadStatus.CALLING_MANAGER, *legs), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.MISSED and d.wake_at is None
    assert d.actions == (SendText("missed"),)  # the visitor is told, with a link to pick a new time


def test_a_site_without_managers_misses_with_a_reason() -> None:
    d = decide(lead(managers=()), Trigger.WAKE, NOW, P)
    assert d.status is LeadStatus.MISSED and d.outcome == "the site has no active manager"


def test_busy_managers_are_skipped_and_all_busy_waits_in_the_queue() -> None:
    busy = (ManagerView(1, "+1", free=False), ManagerView(2, "+2"), ManagerView(3, "+3", free=False))
    assert [c.manager_id for c in calls(decide(lead(managers=busy), Trigger.WAKE, NOW, P))] == [2]
    none_free = tuple(replace(m, free=False) for m in MANAGERS)
    d = decide(lead(managers=none_free), Trigger.WAKE, NOW, P)
    # No wake-up of its own: a manager who becomes free wakes it (never a rewrite every so often).
    assert d.status is LeadStatus.QUEUED and not d.actions and d.wake_at is None


def test_a_queued_lead_looks_again_when_a_manager_comes_on_duty() -> None:
    on_duty_at_two = NOW + timedelta(hours=2)
    busy_or_off = (ManagerView(1, "+1", free=False), ManagerView(2, "+2", on_duty=False))
    d = decide(lead(managers=busy_or_off, duty_from=on_duty_at_two), Trigger.WAKE, NOW, P)
    assert d.status is LeadStatus.QUEUED and d.wake_at == on_duty_at_two


def test_a_queue_wake_up_rings_a_free_manager_and_leaves_others_alone() -> None:
    waiting = lead(wake_at=None, managers=(ManagerView(1, "+1", free=False), ManagerView(2, "+2")))
    assert [c.manager_id for c in calls(decide(waiting, Trigger.QUEUE, NOW, P))] == [2]
    # Whatever else the lead is doing, a queue wake-up changes nothing: it is only for queued leads.
    calling = lead(LeadStatus.CALLING_MANAGER, mleg(1), wake_at=NOW + timedelta(seconds=60))
    assert decide(calling, Trigger.QUEUE, NOW, P) == unchanged(calling)
    # A plain wake-up of a lead waiting with no time of its own is stale: it changes nothing.
    assert decide(waiting, Trigger.WAKE, NOW, P) == unchanged(waiting)


def test_visitor_answers_then_the_call_ends_completed() -> None:
    accepted = mleg(1, LegStatus.ANSWERED, accepted=True)
    d = decide(lead(LeadStatus.CALLING_VISITOR, accepted, vleg(LegStatus.ANSWERED)), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.CONNECTED
    d = decide(
        lead(LeadStatus.CONNECTED, accepted, vleg(LegStatus.ENDED, EndReason.COMPLETED)), Trigger.LEG, NOW, P
    )
    assert d.status is LeadStatus.COMPLETED
    assert d.actions == (Hangup("m1a1", EndReason.COMPLETED),)


def test_a_visitor_whose_call_ended_completed_talked_even_if_their_answer_was_never_reported() -> None:
    # Their answer's report was held while the database was away, and their end came first: "completed"
    # is said only of a connected call, so they talked; calling them again would be a second call after a
    # conversation.
    accepted = mleg(1, LegStatus.ANSWERED, accepted=True)
    talked = vleg(LegStatus.ENDED, EndReason.COMPLETED)
    d = decide(lead(LeadStatus.CALLING_VISITOR, accepted, talked), Trigger.LEG, NOW, P)
    assert (d.status, d.outcome, d.attempt) == (LeadStatus.COMPLETED, "talked", 1)
    assert d.actions == (Hangup("m1a1", EndReason.COMPLETED),)


def test_visitor_not_answering_is_retried_later_then_unreachable() -> None:
    accepted = mleg(1, LegStatus.ANSWERED, accepted=True)
    d = decide(lead(LeadStatus.CALLING_VISITOR, accepted, vleg(LegStatus.ENDED, EndReason.NO_ANSWER)),
               Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.SCHEDULED and d.attempt == 2
    assert d.wake_at == NOW + timedelta(seconds=180)
    (hangup,) = d.actions
    assert isinstance(hangup, Hangup) and "did not answer" in (hangup.say or "")

    last = lead(LeadStatus.CALLING_VISITOR, mleg(1, LegStatus.ANSWERED, accepted=True, attempt=3),
                vleg(LegStatus.ENDED, EndReason.BUSY, attempt=3), attempt=3)
    d = decide(last, Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.UNREACHABLE and d.wake_at is None
    assert SendText("unreachable") in d.actions


def test_a_retry_rings_the_managers_again_from_the_first() -> None:
    old = [mleg(1, LegStatus.ENDED, accepted=True, reason=EndReason.COMPLETED)]
    d = decide(lead(LeadStatus.SCHEDULED, *old, attempt=2), Trigger.WAKE, NOW, P)
    assert [(c.manager_id, c.step) for c in calls(d)] == [(1, "a2:m1")]


def test_manager_hanging_up_before_the_visitor_answers_moves_the_hunt_on() -> None:
    gone = mleg(1, LegStatus.ENDED, accepted=True, reason=EndReason.COMPLETED)
    d = decide(lead(LeadStatus.CALLING_VISITOR, gone, vleg(LegStatus.RINGING)), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.CALLING_MANAGER
    assert Hangup("v1") in d.actions and [c.manager_id for c in calls(d)] == [2]


def test_an_early_or_stale_wake_changes_nothing() -> None:
    later = lead(LeadStatus.SCHEDULED, wake_at=NOW + timedelta(minutes=5))
    assert decide(later, Trigger.WAKE, NOW, P).status is LeadStatus.SCHEDULED
    assert not decide(later, Trigger.WAKE, NOW, P).actions


def test_a_silent_provider_is_hung_up_at_the_deadline_and_the_hunt_goes_on() -> None:
    d = decide(lead(LeadStatus.CALLING_MANAGER, mleg(1)), Trigger.WAKE, NOW, P)
    assert Hangup("m1a1", EndReason.TIMEOUT) in d.actions
    assert [c.manager_id for c in calls(d)] == [2]


def test_the_manager_deadline_counts_from_when_the_call_started_not_from_the_decision() -> None:
    window = timedelta(seconds=P.ring_timeout + P.whisper_seconds + P.grace)
    # The call waited 50 s for the account's pace (or in the provider's queue): the deadline moves on.
    late = replace(mleg(1, LegStatus.INITIATED), starts_at=NOW - timedelta(seconds=20))
    d = decide(lead(LeadStatus.CALLING_MANAGER, late), Trigger.WAKE, NOW, P)
    assert d.status is LeadStatus.CALLING_MANAGER and d.actions == ()
    assert d.wake_at == late.starts_at + window
    # Ringing at once, one manager's window passes while another's (started late) has not: only the
    # first is hung up.
    on_time = replace(mleg(2), starts_at=NOW - window)
    d = decide(lead(LeadStatus.CALLING_MANAGER, late, on_time, routing="simultaneous"), Trigger.WAKE, NOW, P)
    assert d.actions == (Hangup("m2a1", EndReason.TIMEOUT),) and d.wake_at == late.starts_at + window
    # Once its own window has passed, it is a silent provider like any other.
    d = decide(lead(LeadStatus.CALLING_MANAGER, late), Trigger.WAKE, late.starts_at + window, P)
    assert Hangup("m1a1", EndReason.TIMEOUT) in d.actions and [c.manager_id for c in calls(d)] == [2]


def test_terminal_leads_never_move() -> None:
    for status in (LeadStatus.COMPLETED, LeadStatus.MISSED, LeadStatus.UNREACHABLE, LeadStatus.CANCELLED):
        for trigger in (Trigger.WAKE, Trigger.LEG, Trigger.CANCEL):
            d = decide(lead(status), trigger, NOW, P)
            assert d.status is status and not d.actions


def test_cancel_hangs_up_what_is_ringing() -> None:
    d = decide(lead(LeadStatus.CALLING_MANAGER, mleg(1)), Trigger.CANCEL, NOW, P)
    assert d.status is LeadStatus.CANCELLED and d.actions == (Hangup("m1a1"),)


def test_the_preferred_manager_is_offered_the_lead_first() -> None:
    d = decide(lead(preferred_manager_id=3), Trigger.WAKE, NOW, P)
    assert [c.manager_id for c in calls(d)] == [3]
    d = decide(lead(LeadStatus.CALLING_MANAGER, mleg(3, LegStatus.ENDED, reason=EndReason.NO_ANSWER),
                    preferred_manager_id=3), Trigger.LEG, NOW, P)
    assert [c.manager_id for c in calls(d)] == [1]


def test_call_back_now_reopens_a_missed_lead_as_a_new_attempt() -> None:
    d = decide(lead(LeadStatus.MISSED, attempt=1), Trigger.CALL_BACK, NOW, P)
    assert (d.status, d.attempt, d.wake_at) == (LeadStatus.QUEUED, 2, NOW)
    with pytest.raises(IllegalMove):
        decide(lead(LeadStatus.CALLING_MANAGER), Trigger.CALL_BACK, NOW, P)


def test_a_refused_visitor_number_fails_the_lead_with_the_reason_instead_of_retrying() -> None:
    accepted = mleg(1, LegStatus.ANSWERED, accepted=True)
    refused = replace(vleg(LegStatus.ENDED, EndReason.REJECTED), detail="invalid number (Twilio 13224)")
    d = decide(lead(LeadStatus.CALLING_VISITOR, accepted, refused), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.FAILED and d.wake_at is None
    assert d.outcome == "the visitor's number cannot be called: invalid number (Twilio 13224)"
    # The manager waiting on the line is told why and let go.
    assert d.actions == (Hangup("m1a1", say="The visitor's number cannot be called. Goodbye."),)


def test_a_refused_manager_number_only_takes_that_manager_out_of_the_hunt() -> None:
    refused = replace(mleg(1, LegStatus.ENDED, reason=EndReason.REJECTED), detail="invalid number")
    d = decide(lead(LeadStatus.CALLING_MANAGER, refused), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.CALLING_MANAGER and [c.manager_id for c in calls(d)] == [2]


def test_a_provider_that_keeps_failing_fails_the_lead_with_the_reason() -> None:
    broken = replace(mleg(1, LegStatus.ENDED, reason=EndReason.ERROR), detail="authentication failed")
    d = decide(lead(LeadStatus.CALLING_MANAGER, broken), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.FAILED and not calls(d)
    assert d.outcome == "the telephony provider failed: authentication failed"


def test_a_manager_who_hangs_up_between_the_visitors_answer_and_the_bridge_never_made_a_talk() -> None:
    # The screen said "a person" (connected so far); then the manager's hang-up and the visitor's end come
    # in either order. The lead is never completed: the hunt moves on, the visitor is not blamed.
    gone = mleg(1, LegStatus.ENDED, accepted=True, reason=EndReason.COMPLETED)
    answered = vleg(LegStatus.ANSWERED)
    unbridged = vleg(LegStatus.ENDED, EndReason.NO_ANSWER)  # the Dial's DialBridged=false, or a short call

    first = decide(lead(LeadStatus.CONNECTED, gone, answered), Trigger.LEG, NOW, P)
    assert first.status is LeadStatus.CONNECTED and first.outcome is None and not first.actions
    assert first.wake_at == NOW + timedelta(seconds=P.check_seconds)  # then the visitor's call is asked about
    asked = decide(lead(LeadStatus.CONNECTED, gone, answered, wake_at=first.wake_at), Trigger.WAKE,
                   first.wake_at, P)
    assert asked.status is LeadStatus.CONNECTED and [type(a).__name__ for a in asked.actions] == ["Check"]

    for legs in ((gone, unbridged), (mleg(1, LegStatus.ANSWERED, accepted=True), unbridged)):
        d = decide(lead(LeadStatus.CONNECTED, *legs), Trigger.LEG, NOW, P)
        assert d.status is not LeadStatus.COMPLETED and d.outcome != "talked"
    d = decide(lead(LeadStatus.CONNECTED, gone, unbridged), Trigger.LEG, NOW, P)
    assert d.status is LeadStatus.CALLING_MANAGER and [c.manager_id for c in calls(d)] == [2]
    assert d.notes == ("the manager hung up before the visitor was connected",)
    # The bridge did happen (the Dial said so): the manager's hang-up ended a conversation.
    talked = decide(lead(LeadStatus.CONNECTED, gone, vleg(LegStatus.ENDED, EndReason.COMPLETED)), Trigger.LEG, NOW, P)
    assert (talked.status, talked.outcome) == (LeadStatus.COMPLETED, "talked")
