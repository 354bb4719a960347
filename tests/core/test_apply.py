"""A step on one lead around the machine's decision: the work applied before deciding, then the decision
applied to the records and the timeline. Pure, no database."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta

import pytest

from dialer.core.apply import apply_decision, before_deciding, changes_nothing
from dialer.core.events import LegAnswered, LegLost, LegRinging
from dialer.core.legs import ManagerTaken
from dialer.core.machine import Decision, Hangup, PlaceCall, SendText, Trigger
from dialer.core.records import LeadRow, LegRow, ManagerRow
from dialer.core.states import EndReason, LeadStatus, LegRole, LegStatus
from dialer.core.step import Line, Step
from tests.core.records import NOW, lead_row, manager_leg, managers, visitor_leg

LATER = NOW + timedelta(hours=3)


def ids() -> Callable[[], str]:
    count = itertools.count(1)
    return lambda: f"new{next(count)}"


def ring(manager_id: int, attempt: int = 1) -> PlaceCall:
    return PlaceCall(LegRole.MANAGER, f"a{attempt}:m{manager_id}", f"+1202555010{manager_id}", 20, manager_id)


def step_on(lead: LeadRow, decision: Decision, legs: list[LegRow] | None = None,
            held: list[ManagerRow] | None = None, step: Step | None = None):  # type: ignore[no-untyped-def]
    step = step or Step(NOW)
    legs = [] if legs is None else legs
    held = managers(None, None, None) if held is None else held
    return apply_decision(step, lead, legs, held, decision, ids()), step, legs, held


# before deciding -----------------------------------------------------------------------------------

def test_a_report_about_another_leads_leg_leaves_nothing_to_decide() -> None:
    step = Step(NOW)
    assert not before_deciding(step, lead_row(), [manager_leg(1)], [], {}, Trigger.LEG, event=LegAnswered("zz"))
    assert step.lines == []


def test_a_report_that_changes_only_the_leg_leaves_nothing_to_decide() -> None:
    step, legs = Step(NOW), [manager_leg(1)]
    assert not before_deciding(step, lead_row(), legs, [], {1: "Anna"}, Trigger.LEG, event=LegRinging("m1"))
    assert legs[0].status == "ringing"
    assert [line.detail for line in step.lines] == ["manager Anna: ringing"]  # named from `names`
    assert before_deciding(step, lead_row(), legs, [], {1: "Anna"}, Trigger.LEG, event=LegAnswered("m1"))


@pytest.mark.parametrize(("held", "reason"), [((), EndReason.FAILED), ((LegAnswered("v1"),), EndReason.COMPLETED)])
def test_a_call_the_provider_lost_is_judged_after_the_reports_held_before_it(held: tuple, reason: EndReason) -> None:
    # Reconciliation found no record of the visitor's call (it died with a process). Whether they talked
    # is judged by the step, from the leg as it stands once the reports held for the lead are applied
    # (their answer, held while the database was away): never from what was known when it was asked.
    step, legs = Step(NOW), [visitor_leg()]
    reports = [*held, LegLost("v1", "SIM1", detail="no record")]
    assert before_deciding(step, lead_row(LeadStatus.CALLING_VISITOR), legs, [], {}, Trigger.LEG, reports=reports)
    assert (legs[0].status, legs[0].end_reason, legs[0].end_detail) == ("ended", reason, "no record")


def test_call_back_now_rings_that_manager_first_and_marks_the_lead_handled() -> None:
    lead = lead_row(LeadStatus.MISSED)
    assert before_deciding(Step(NOW), lead, [], [], {}, Trigger.CALL_BACK, prefer=2)
    assert (lead.preferred_manager_id, lead.handled_at) == (2, NOW)


def test_a_new_time_from_the_visitor_is_the_promised_time() -> None:
    lead = lead_row(LeadStatus.UNREACHABLE)
    assert before_deciding(Step(NOW), lead, [], [], {}, Trigger.RESCHEDULE, when=LATER)
    assert lead.scheduled_for == LATER and lead.changes() == {"scheduled_for": LATER}


# applying a decision -------------------------------------------------------------------------------

def test_a_decision_that_changes_nothing_writes_nothing() -> None:
    lead = lead_row(LeadStatus.CALLING_MANAGER)
    decision = Decision(LeadStatus.CALLING_MANAGER, lead.wake_at, 1)
    assert changes_nothing(lead, decision)
    plan, step, _, _ = step_on(lead, decision)
    assert plan is None and step.lines == [] and lead.changes() == {}


def test_a_decision_that_changes_nothing_still_reports_a_freed_manager() -> None:
    lead = lead_row(LeadStatus.CALLING_MANAGER)
    step = Step(NOW, freed={"L1"})
    plan, _, _, _ = step_on(lead, Decision(LeadStatus.CALLING_MANAGER, lead.wake_at, 1), step=step)
    assert plan is not None and plan.released_managers and not plan.calls


def test_ringing_a_manager_claims_them_and_writes_the_leg_to_dial() -> None:
    lead = lead_row()
    deadline = NOW + timedelta(seconds=70)
    plan, step, legs, held = step_on(lead, Decision(LeadStatus.CALLING_MANAGER, deadline, 1, (ring(2),)))
    assert plan is not None
    (leg,) = legs
    assert plan.calls == [(leg, ring(2))]
    assert leg.is_new and (leg.id, leg.step, leg.role, leg.manager_id, leg.to_number, leg.status) == (
        "new1", "a1:m2", "manager", 2, "+12025550102", "pending")
    assert [m.busy_lead_id for m in held] == [None, "L1", None]
    assert (lead.status, lead.wake_at, lead.updated_at) == ("calling_manager", deadline, NOW)
    assert (plan.status_changed, plan.step_changed, plan.step) == (True, True, 1)
    assert step.lines == [
        Line("L1", NOW, "leg", None, "new1", "manager M2: dialing"),
        Line("L1", NOW, "status", "calling_manager", None, ""),
    ]


def test_ringing_a_manager_another_lead_holds_raises() -> None:
    with pytest.raises(ManagerTaken):
        step_on(lead_row(), Decision(LeadStatus.CALLING_MANAGER, NOW, 1, (ring(1),)), held=managers("L2"))


def test_dialing_the_visitor_claims_no_manager() -> None:
    lead = lead_row(LeadStatus.CALLING_MANAGER)
    accepted = manager_leg(1, LegStatus.ANSWERED, accepted=True)
    held = managers("L1")
    call = PlaceCall(LegRole.VISITOR, "a1:v:m1", lead.phone, 20, bridge_leg_id="m1")
    plan, step, legs, _ = step_on(lead, Decision(LeadStatus.CALLING_VISITOR, NOW, 1, (call,),
                                                 ("a manager pressed 1: dialing the visitor",)),
                                  [accepted], held)
    assert plan is not None and legs[1].bridged_to == "m1" and held[0].busy_lead_id == "L1"
    assert (plan.step_changed, plan.step) == (False, 1)  # the live stream's step counts managers rung
    assert [line.detail for line in step.lines] == ["visitor: dialing", "a manager pressed 1: dialing the visitor"]


def test_hanging_up_ends_the_leg_frees_its_manager_and_asks_the_provider() -> None:
    lead = lead_row(LeadStatus.CALLING_MANAGER)
    legs = [manager_leg(1, LegStatus.ANSWERED, answered_at=NOW - timedelta(seconds=9)),
            manager_leg(2, LegStatus.RINGING, provider_sid=None)]
    held = managers("L1", "L1", None)
    hangups = (Hangup("m1", EndReason.TIMEOUT), Hangup("m2", EndReason.TIMEOUT))
    plan, step, _, _ = step_on(lead, Decision(LeadStatus.CALLING_MANAGER, NOW, 1, (*hangups, ring(3))), legs, held)
    assert plan is not None
    assert [(leg.status, leg.end_reason, leg.duration) for leg in legs[:2]] == [
        ("ended", "timeout", 9), ("ended", "timeout", None)]
    assert [m.busy_lead_id for m in held] == [None, None, "L1"]
    assert plan.released_managers
    assert plan.hangups == [(legs[0], hangups[0])]  # a leg the provider never confirmed has no call to end
    assert [line.detail for line in step.lines] == [
        "manager M1: hung up by us (timeout)", "manager M2: hung up by us (timeout)", "manager M3: dialing"]


def test_hanging_up_a_leg_already_over_only_asks_the_provider() -> None:
    lead = lead_row(LeadStatus.CONNECTED)
    over = manager_leg(1, LegStatus.ENDED, end_reason="completed", ended_at=NOW)
    plan, step, _, _ = step_on(lead, Decision(LeadStatus.COMPLETED, None, 1, (Hangup("m1", EndReason.COMPLETED),),
                                              ("call ended",), outcome="talked"), [over])
    assert plan is not None and plan.hangups == [(over, Hangup("m1", EndReason.COMPLETED))]
    assert over.changes() == {}
    assert step.lines == [Line("L1", NOW, "status", "completed", None, "call ended")]
    assert (lead.status, lead.outcome, lead.ended_at, lead.wake_at) == ("completed", "talked", NOW, None)


def test_a_confirmation_and_a_reminder_are_recorded_when_sent() -> None:
    lead = lead_row(LeadStatus.SCHEDULED, scheduled_for=LATER)
    remind_at = LATER - timedelta(minutes=30)
    plan, step, _, _ = step_on(lead, Decision(LeadStatus.SCHEDULED, remind_at, 1, (SendText("confirm"),),
                                              scheduled_for=LATER))
    assert plan is not None and plan.texts == [SendText("confirm")]
    assert (lead.confirmed_at, lead.reminded_at, lead.wake_at) == (NOW, None, remind_at)
    assert step.lines[0] == Line("L1", NOW, "sms", None, None, "sending the visitor a text message: confirm")

    lead = lead_row(LeadStatus.SCHEDULED, scheduled_for=LATER, confirmed_at=NOW, wake_at=remind_at)
    step_on(lead, Decision(LeadStatus.SCHEDULED, LATER, 1, (SendText("reminder"),), scheduled_for=LATER))
    assert (lead.confirmed_at, lead.reminded_at) == (NOW, NOW)


def test_a_new_attempt_is_a_new_promise_confirmed_and_reminded_anew() -> None:
    earlier = NOW - timedelta(hours=5)
    lead = lead_row(LeadStatus.CALLING_VISITOR, confirmed_at=earlier, reminded_at=earlier)
    retry = NOW + timedelta(minutes=3)
    plan, step, _, _ = step_on(lead, Decision(LeadStatus.SCHEDULED, retry, 2, notes=("visitor did not answer",),
                                              scheduled_for=retry))
    assert plan is not None
    assert (lead.attempt, lead.confirmed_at, lead.reminded_at, lead.scheduled_for) == (2, None, None, retry)


def test_a_new_attempt_confirmed_in_the_same_decision_keeps_that_confirmation() -> None:
    earlier = NOW - timedelta(hours=5)
    lead = lead_row(LeadStatus.MISSED, confirmed_at=earlier, reminded_at=earlier)
    step_on(lead, Decision(LeadStatus.SCHEDULED, LATER, 2, (SendText("confirm"),), ("the visitor picked a new time",),
                           scheduled_for=LATER))
    assert (lead.attempt, lead.confirmed_at, lead.reminded_at) == (2, NOW, None)


def test_the_same_attempt_keeps_its_confirmation() -> None:
    lead = lead_row(LeadStatus.SCHEDULED, confirmed_at=NOW, reminded_at=NOW, scheduled_for=NOW)
    step_on(lead, Decision(LeadStatus.CALLING_MANAGER, LATER, 1, (ring(1),)))
    assert (lead.confirmed_at, lead.reminded_at) == (NOW, NOW)


def test_the_status_line_joins_the_notes_and_is_written_for_notes_alone() -> None:
    lead = lead_row(LeadStatus.QUEUED)
    wake = NOW + timedelta(seconds=30)
    _, step, _, _ = step_on(lead, Decision(LeadStatus.QUEUED, wake, 1, notes=("first", "second")))
    assert step.lines == [Line("L1", NOW, "status", "queued", None, "first; second")]
    _, step, _, _ = step_on(lead_row(LeadStatus.QUEUED), Decision(LeadStatus.QUEUED, wake, 1))
    assert step.lines == []  # a queued lead looking again: no line


def test_the_live_streams_step_counts_this_attempts_managers_only() -> None:
    lead = lead_row(LeadStatus.SCHEDULED, attempt=2)
    old = [manager_leg(1, LegStatus.ENDED), manager_leg(2, LegStatus.ENDED, step="a2:m2"), visitor_leg(LegStatus.ENDED)]
    plan, _, _, _ = step_on(lead, Decision(LeadStatus.CALLING_MANAGER, LATER, 2, (ring(3, attempt=2),)), old)
    assert plan is not None and plan.step == 2
