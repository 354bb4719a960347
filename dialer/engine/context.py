"""What the state machine needs to know about a lead beyond its own records, computed by the engine for
one step from `now`: the windows it may be called in, which managers are on duty, when the next one comes
on duty, the site's routing and (round robin) its place in the rotation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.core import windows
from dialer.core.machine import Policy
from dialer.core.records import LeadRow, ManagerRow
from dialer.core.states import LeadStatus
from dialer.engine import store


async def lead_context(
    conn: AsyncConnection, policy: Policy, lead: LeadRow, site: store.SiteRow, managers: list[ManagerRow],
    now: datetime,
) -> dict[str, Any]:
    ring = policy.ring_timeout
    active = [m for m in managers if m.active]
    context: dict[str, Any] = {
        "allowed_at": windows.allowed_at(now, site, active, lead.timezone, ring),
        "on_duty": windows.on_duty(now, site, active, ring),
        "duty_from": windows.next_on_duty(now, site, active, ring),
        "routing": site.routing,
    }
    if site.routing == "round_robin" and lead.status in (LeadStatus.QUEUED, LeadStatus.SCHEDULED):
        context["rotation"] = await store.leads_before(conn, lead)
    return context
