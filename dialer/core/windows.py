"""Which windows apply to a lead: the visitor's calling window, the site's business hours, and each
manager's working hours, read from the site's settings (all pure; `now` is passed in).

Site settings (`sites.settings`), all optional:
- `calling_window`: `["08:00", "22:00"]` — when visitors may be called, in their own time zone;
- `business_hours`: `{"mon": [["09:00", "18:00"]], …}` in the site's time zone (missing: around the clock);
- `closed_dates`: `["2026-12-25", …]` in the site's time zone;
- managers' `working_hours` use the business-hours shape, in the site's time zone (missing: any time).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, time
from typing import Any, Protocol

from dialer.core.hours import HoursError, Weekly, earliest_for_any, next_allowed, parse_hhmm

log = logging.getLogger("ringback.calling")

DEFAULT_WINDOW = ("08:00", "22:00")


class SiteLike(Protocol):
    key: str
    timezone: str
    settings: dict[str, Any]


class ManagerLike(Protocol):
    id: int
    working_hours: dict[str, Any] | None


def visitor_window(site: SiteLike, visitor_tz: str) -> Weekly:
    start, end = (site.settings or {}).get("calling_window") or DEFAULT_WINDOW
    return Weekly.every_day(visitor_tz, parse_hhmm(start) or time(0), parse_hhmm(end))


def business_hours(site: SiteLike) -> Weekly:
    settings = site.settings or {}
    try:
        return Weekly.from_config(site.timezone, settings.get("business_hours"), settings.get("closed_dates") or ())
    except HoursError as exc:
        log.error("site %s: business hours unreadable (%s); using the calling window alone", site.key, exc)
        return Weekly.always(site.timezone)


def working_hours(site: SiteLike, manager: ManagerLike) -> Weekly | None:
    if not manager.working_hours:
        return None
    try:
        return Weekly.from_config(site.timezone, manager.working_hours)
    except HoursError as exc:
        log.error("manager %s: working hours unreadable (%s); treating as any time", manager.id, exc)
        return None


def common(site: SiteLike, visitor_tz: str) -> list[Weekly]:
    return [visitor_window(site, visitor_tz), business_hours(site)]


def allowed_at(
    now: datetime, site: SiteLike, managers: Sequence[ManagerLike], visitor_tz: str, ring: float
) -> datetime | None:
    """The earliest moment from `now` a ring may start for this visitor with some manager on duty."""
    shared = common(site, visitor_tz)
    hours = [working_hours(site, m) for m in managers]
    if all(s.fits(now, ring) for s in shared) and (not hours or any(h is None or h.fits(now, ring) for h in hours)):
        return now  # the common case, answered without searching the weeks ahead
    return earliest_for_any(now, shared, hours, ring)


def on_duty(now: datetime, site: SiteLike, managers: Sequence[ManagerLike], ring: float) -> dict[int, bool]:
    result = {}
    for m in managers:
        hours = working_hours(site, m)
        result[m.id] = hours is None or hours.fits(now, ring)
    return result


def fits(when: datetime, site: SiteLike, managers: Sequence[ManagerLike], visitor_tz: str, ring: float) -> bool:
    return allowed_at(when, site, managers, visitor_tz, ring) == when


__all__ = ["allowed_at", "business_hours", "common", "fits", "next_allowed", "on_duty", "visitor_window"]
