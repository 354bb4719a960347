"""What the visitor's widget and the dashboard's live board are told about a lead, and on which channel."""

from __future__ import annotations

from typing import Any

from dialer.core.records import LeadRow
from dialer.core.states import LeadStatus
from dialer.db.models import Lead


def lead_channel(lead_id: str) -> str:
    return f"lead:{lead_id}"


def site_channel(site_id: int) -> str:
    return f"site:{site_id}"


def public_status(
    lead: LeadRow | Lead, step: int = 0, queue_position: int | None = None, *, managers: int | None = None
) -> dict[str, Any]:
    """What the visitor's widget is told about a lead: no manager names, no numbers. `managers`: how many
    managers the hunt may ring one after another (None when they are rung all at once)."""
    scheduled = lead.scheduled_for if lead.status == LeadStatus.SCHEDULED else None
    message: dict[str, Any] = {
        "id": lead.id,
        "status": lead.status,
        "version": lead.version,
        "attempt": lead.attempt,
        "step": step,
        "scheduled_for": scheduled.isoformat() if scheduled else None,
    }
    if queue_position is not None:
        message["queue_position"] = queue_position
    if managers is not None and lead.status == LeadStatus.CALLING_MANAGER:
        message["managers"] = max(managers, step)
    return message
