"""Times a visitor may pick for a callback: the next slots inside every window, with room left.

The slot length and capacity are the site config's (`slot_minutes`, `slot_capacity` in its settings).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from dialer.core import windows
from dialer.core.errors import InvalidField
from dialer.core.site_config import ManagerLike, SiteConfig

LEAD_TIME = timedelta(minutes=15)  # a slot must start at least this far ahead
SEARCH_DAYS = 14


def slot_minutes(site: SiteConfig) -> int:
    return site.slot_minutes


def capacity(site: SiteConfig, managers: Sequence[ManagerLike]) -> int:
    return site.slot_capacity or max(1, len(managers))


def slot_start(moment: datetime, minutes: int) -> datetime:
    """The start of the slot holding `moment` (slots are aligned to UTC multiples of their length)."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % (minutes * 60), tz=moment.tzinfo)


def offer(
    now: datetime,
    site: SiteConfig,
    managers: Sequence[ManagerLike],
    visitor_tz: str,
    booked: Counter[datetime],
    *,
    ring: float,
    count: int = 12,
) -> list[datetime]:
    minutes = slot_minutes(site)
    step = timedelta(minutes=minutes)
    room = capacity(site, managers)
    found: list[datetime] = []
    candidate = slot_start(now + LEAD_TIME, minutes)
    if candidate < now + LEAD_TIME:
        candidate += step
    limit = now + timedelta(days=SEARCH_DAYS)
    while len(found) < count and candidate < limit:
        allowed = windows.allowed_at(candidate, site, managers, visitor_tz, ring)
        if allowed is None:
            break
        if allowed > candidate:  # jump over closed hours to the first slot at or after the opening
            candidate = slot_start(allowed, minutes)
            if candidate < allowed:
                candidate += step
            continue
        if booked[candidate] < room:
            found.append(candidate)
        candidate += step
    return found


def picked_time(value: datetime, field: str = "scheduled_for") -> datetime:
    """A time a visitor sent, if it is one that can be booked at all: with a UTC offset, and one that can
    be turned into UTC (the year 9999 with a negative offset cannot)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidField(field, "The time needs a UTC offset, e.g. 2026-11-23T10:00:00+01:00.", "invalid_datetime")
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    # A year from either end of what Python's dates hold, so that nothing computed from it (the call's
    # end, the local day around it) can overflow.
    if in_utc is None or not 1 < in_utc.year < 9999:
        raise InvalidField(field, "This time is out of range. Please pick one of the offered times.",
                           "invalid_datetime") from None
    return value


def parse_picked_time(text: str, field: str) -> datetime:
    """`picked_time` of a time as a form sends it (ISO 8601)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidField(field, "Please pick one of the offered times.", "invalid_datetime") from None
    return picked_time(value, field)


def check(
    when: datetime,
    now: datetime,
    site: SiteConfig,
    managers: Sequence[ManagerLike],
    visitor_tz: str,
    booked: Counter[datetime],
    *,
    ring: float,
) -> str | None:
    """Why `when` cannot be booked (a message for the visitor), or None when it can."""
    if when < now:
        return "This time has already passed. Please pick a later one."
    if not windows.fits(when, site, managers, visitor_tz, ring):
        return "We cannot call at that time: it is outside calling hours. Please pick one of the offered times."
    if booked[slot_start(when, slot_minutes(site))] >= capacity(site, managers):
        return "That time is fully booked. Please pick another one."
    return None
