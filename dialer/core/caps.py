"""Daily caps on calls and on spend, the rules: the day a site's caps count in (its own time zone), when a
cap is reached, and what becomes of a call request over one. A request over a cap is never refused (the
visitor did nothing wrong): it is kept as a message for the managers, or moved to the next morning.
The counting and the owner's notice are in `dialer/protection/caps.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dialer.core.states import LeadStatus


@dataclass(frozen=True)
class Day:
    start: datetime
    end: datetime
    label: str  # YYYY-MM-DD in the site's time zone


@dataclass(frozen=True)
class Reached:
    kind: str  # daily_call_cap | daily_spend_cap: the owner gets one notice of each a day
    why: str


@dataclass(frozen=True)
class OverCap:
    """The request as it stands once a cap turned it away from calling now."""

    kind: str  # call (moved to the next day) | message
    status: LeadStatus
    scheduled_for: datetime | None
    wake_at: datetime | None
    detail: str  # the timeline's line and the owner's notice


def local_day(timezone: str, now: datetime) -> Day:
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone).date()
    start = datetime.combine(local, time(0), zone)
    end = datetime.combine(local + timedelta(days=1), time(0), zone)
    return Day(start, end, local.isoformat())


def applies(kind: str, scheduled_for: datetime | None, day: Day) -> bool:
    """Today's caps count a call request for today; a message, or a call booked for another day, is left
    alone."""
    return kind == "call" and (scheduled_for is None or scheduled_for < day.end)


def calls_reached(cap: int | None, calls: int) -> Reached | None:
    """`calls`: the site's other call requests today."""
    if cap is not None and calls >= cap:
        return Reached("daily_call_cap", f"daily cap of {cap} calls reached")
    return None


def spend_reached(cap: Decimal | None, spent: Decimal, currency: str) -> Reached | None:
    if cap is not None and spent >= cap:
        return Reached("daily_spend_cap", f"daily spending cap of {cap} {currency} reached ({spent})")
    return None


def over_cap(reached: Reached, mode: str, next_day_at: time, day: Day, timezone: str, now: datetime) -> OverCap:
    """`mode` is the site's choice: next_day (call at `next_day_at` the next morning) or message."""
    if mode == "next_day":
        zone = ZoneInfo(timezone)
        local_next = day.end.astimezone(zone).date()
        when = datetime.combine(local_next, next_day_at, zone)
        detail = f"{reached.why}: scheduled for {local_next.isoformat()} {next_day_at:%H:%M} instead of calling now"
        # Due now: the engine confirms the new time by text (and keeps to calling hours then).
        return OverCap("call", LeadStatus.SCHEDULED, when, now, detail)
    return OverCap("message", LeadStatus.RECEIVED, None, None, f"{reached.why}: kept as a message instead of calling")
