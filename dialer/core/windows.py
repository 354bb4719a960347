"""Which windows apply to a lead: the visitor's calling window, the site's business hours, and each
manager's working hours, as the site's config holds them (all pure; `now` is passed in). How they are
read from the settings: `dialer/core/site_config.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dialer.core.hours import Weekly, earliest_for_any, next_allowed
from dialer.core.site_config import ManagerLike, SiteConfig


def visitor_window(site: SiteConfig, visitor_tz: str) -> Weekly:
    return site.visitor_window(visitor_tz)


def business_hours(site: SiteConfig) -> Weekly:
    return site.business_hours


def working_hours(site: SiteConfig, manager: ManagerLike) -> Weekly | None:
    return site.hours_of(manager)


def common(site: SiteConfig, visitor_tz: str) -> list[Weekly]:
    return [site.visitor_window(visitor_tz), site.business_hours]


def allowed_at(
    now: datetime, site: SiteConfig, managers: Sequence[ManagerLike], visitor_tz: str, ring: float
) -> datetime | None:
    """The earliest moment from `now` a ring may start for this visitor with some manager on duty."""
    shared = common(site, visitor_tz)
    hours = [site.hours_of(m) for m in managers]
    if all(s.fits(now, ring) for s in shared) and (not hours or any(h is None or h.fits(now, ring) for h in hours)):
        return now  # the common case, answered without searching the weeks ahead
    return earliest_for_any(now, shared, hours, ring)


def on_duty(now: datetime, site: SiteConfig, managers: Sequence[ManagerLike], ring: float) -> dict[int, bool]:
    result = {}
    for m in managers:
        hours = site.hours_of(m)
        result[m.id] = hours is None or hours.fits(now, ring)
    return result


def next_on_duty(now: datetime, site: SiteConfig, managers: Sequence[ManagerLike], ring: float) -> datetime | None:
    """When the first of these managers who is off duty now comes on duty (None: nobody is off duty, or
    nobody comes on within the horizon): a queued lead's one wake-up of its own."""
    starts = []
    for m in managers:
        hours = site.hours_of(m)
        if hours is not None and not hours.fits(now, ring):
            start = hours.next_fit(now, ring)
            if start is not None:
                starts.append(start)
    return min(starts, default=None)


def fits(when: datetime, site: SiteConfig, managers: Sequence[ManagerLike], visitor_tz: str, ring: float) -> bool:
    return allowed_at(when, site, managers, visitor_tz, ring) == when


__all__ = [
    "allowed_at", "business_hours", "common", "fits", "next_allowed", "next_on_duty", "on_duty", "visitor_window",
]
