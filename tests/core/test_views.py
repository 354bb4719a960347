"""The lead as the state machine sees it, built from a step's records."""

from __future__ import annotations

from dialer.core.machine import LegView, ManagerView
from dialer.core.states import EndReason, LeadStatus, LegRole, LegStatus
from dialer.core.views import lead_view
from tests.core.records import NOW, lead_row, manager_leg, managers


def test_a_manager_another_lead_holds_is_busy_one_this_lead_holds_is_free() -> None:
    held = managers("L1", "L2", None)
    view = lead_view(lead_row(), held, [])
    assert [(m.id, m.free) for m in view.managers] == [(1, True), (2, False), (3, True)]


def test_inactive_managers_are_left_out_and_duty_comes_from_the_context() -> None:
    held = managers(None, None, None)
    held[1].active = False
    view = lead_view(lead_row(), held, [], on_duty={3: False}, allowed_at=NOW, routing="simultaneous")
    assert view.managers == (ManagerView(1, "+12025550101"), ManagerView(3, "+12025550103", on_duty=False))
    assert (view.allowed_at, view.routing) == (NOW, "simultaneous")


def test_legs_and_the_promise_as_the_machine_sees_them() -> None:
    leg = manager_leg(4, LegStatus.ENDED, step="a3:m4", accepted=True, end_reason="error", end_detail="outage")
    lead = lead_row(LeadStatus.SCHEDULED, attempt=3, scheduled_for=NOW, confirmed_at=NOW, preferred_manager_id=4)
    view = lead_view(lead, [], [leg])
    assert view.legs == (LegView("m4", 3, LegRole.MANAGER, LegStatus.ENDED, 4, True, EndReason.ERROR, "outage",
                                 has_sid=True),)
    assert (view.status, view.attempt, view.confirmed, view.reminded, view.preferred_manager_id) == (
        LeadStatus.SCHEDULED, 3, True, False, 4)
