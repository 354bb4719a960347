"""When a new lead is to be called: now (queued), at a time the visitor picked or the next time calling
hours allow (scheduled), or never (a message, kept for a human)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core import slots, windows
from dialer.core.errors import InvalidField
from dialer.core.machine import Policy, admit
from dialer.core.site_config import SiteConfig
from dialer.core.states import LeadStatus
from dialer.db.models import Lead, Manager
from dialer.sites.lookup import active_managers

RING = Policy().ring_timeout


@dataclass(frozen=True)
class When:
    status: LeadStatus
    scheduled_for: datetime | None  # set when the lead waits for a time
    wake_at: datetime | None  # when the engine first looks at it (None: never, a message)

    @property
    def is_call(self) -> bool:
        return self.status is not LeadStatus.RECEIVED


MESSAGE = When(LeadStatus.RECEIVED, None, None)


async def schedule(
    session: AsyncSession,
    site: SiteConfig,
    picked: datetime | None,
    zone: str,
    now: datetime,
    *,
    is_message: bool = False,
    managers: list[Manager] | None = None,
) -> When:
    """Raise InvalidField("scheduled_for") when the picked time cannot be booked or nobody can call in
    the coming weeks. `managers` are the site's active ones, if the caller has them already."""
    if is_message:
        return MESSAGE
    if managers is None:
        managers = await active_managers(session, site.id)
    if picked is not None:
        booked = await booked_slots(session, site, now)
        problem = slots.check(picked, now, site, managers, zone, booked, ring=RING)
        if problem:
            raise InvalidField("scheduled_for", problem, "slot_unavailable")
    allowed = windows.allowed_at(now, site, managers, zone, RING)
    if allowed is None:
        raise InvalidField(
            "scheduled_for", "Nobody can call in the coming weeks. Please leave a message instead.", "no_calling_hours"
        )
    status, when = admit(scheduled_for=picked, allowed_at=allowed, now=now)
    # The engine confirms a scheduled time by text, or starts the hunt, at once.
    return When(status, when if status is LeadStatus.SCHEDULED else None, now)


async def booked_slots(session: AsyncSession, site: SiteConfig, now: datetime) -> Counter[datetime]:
    minutes = slots.slot_minutes(site)
    query = select(Lead.scheduled_for).where(
        Lead.site_id == site.id, Lead.status == LeadStatus.SCHEDULED, Lead.scheduled_for >= now
    )
    return Counter(slots.slot_start(t, minutes) for t in (await session.execute(query)).scalars() if t)
