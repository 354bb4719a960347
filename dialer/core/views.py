"""The lead as the state machine sees it, built from the records a step holds."""

from __future__ import annotations

from typing import Any

from dialer.core.machine import LeadView, LegView, ManagerView
from dialer.core.records import LeadRow, LegRow, ManagerRow, attempt_of
from dialer.core.states import EndReason, LeadStatus, LegRole, LegStatus


def leg_view(leg: LegRow) -> LegView:
    return LegView(
        id=leg.id,
        attempt=attempt_of(leg.step),
        role=LegRole(leg.role),
        status=LegStatus(leg.status),
        manager_id=leg.manager_id,
        accepted=bool(leg.accepted),
        end_reason=EndReason(leg.end_reason) if leg.end_reason else None,
        detail=leg.end_detail,
        starts_at=leg.starts_at,
        checked=leg.checked_at is not None,
        answered_at=leg.answered_at,
        has_sid=bool(leg.provider_sid),
    )


def lead_view(lead: LeadRow, managers: list[ManagerRow], legs: list[LegRow], **context: Any) -> LeadView:
    """`managers` are the site's (active or not, in hunt order); `context` carries what the engine
    computed (windows, duty, queue, routing). A manager is free when no other lead holds them."""
    on_duty = context.pop("on_duty", {})
    return LeadView(
        id=lead.id,
        status=LeadStatus(lead.status),
        attempt=lead.attempt,
        phone=lead.phone,
        wake_at=lead.wake_at,
        managers=tuple(
            ManagerView(m.id, m.phone, free=m.busy_lead_id in (None, lead.id), on_duty=on_duty.get(m.id, True))
            for m in managers
            if m.active
        ),
        legs=tuple(leg_view(leg) for leg in legs),
        preferred_manager_id=lead.preferred_manager_id,
        scheduled_for=lead.scheduled_for,
        confirmed=lead.confirmed_at is not None,
        reminded=lead.reminded_at is not None,
        **context,
    )
