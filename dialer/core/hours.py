"""Calling windows as pure functions over `zoneinfo`: when may the phone ring?

A `Weekly` schedule says, per weekday, which wall-clock hours are open in one time zone (a visitor's
calling window, a site's business hours, a manager's working hours), plus closed dates. An instant is
open when its wall-clock time there falls inside an open range of that date. Everything else follows
from that one definition, so daylight-saving gaps and overlaps, midnight and week ends need no special
rules: `intervals` finds the exact open stretches by testing between every point where the answer can
change (range edges, in both readings of an ambiguous time, and the zone's transitions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 60
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

Range = tuple[time, time | None]  # end None means midnight at the end of the day
Interval = tuple[datetime, datetime]  # UTC, [start, end)


class HoursError(ValueError):
    """A schedule that cannot be read; the message says which part and how to write it."""


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_hhmm(text: str) -> time | None:
    """'09:30' -> 09:30; '24:00' -> None (the end of the day)."""
    match = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise HoursError(f"'{text}' is not a time of day; write it as HH:MM, e.g. 09:00 or 24:00")
    if match.group(1) == "24":
        return None
    return time(int(match.group(1)), int(match.group(2)))


def _parse_range(raw: Sequence[str]) -> Range:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise HoursError("each range is a pair of times, e.g. [\"09:00\", \"18:00\"]")
    start, end = parse_hhmm(raw[0]), parse_hhmm(raw[1])
    if start is None:
        raise HoursError("a range cannot start at 24:00")
    if end is not None and end <= start:
        raise HoursError(f"{raw[0]}–{raw[1]}: the end must come after the start (ranges stay within a day)")
    return start, end


@dataclass(frozen=True)
class Weekly:
    tz: str
    days: Mapping[int, tuple[Range, ...]]  # 0 is Monday
    closed: frozenset[date] = field(default_factory=frozenset)

    # building --------------------------------------------------------------------------------------

    @classmethod
    def every_day(cls, tz: str, start: time, end: time | None) -> Weekly:
        return cls(tz, {d: ((start, end),) for d in range(7)})

    @classmethod
    def always(cls, tz: str = "UTC") -> Weekly:
        return cls.every_day(tz, time(0), None)

    @classmethod
    def from_config(
        cls, tz: str, hours: Mapping[str, Sequence[Sequence[str]]] | None, closed: Iterable[str] = ()
    ) -> Weekly:
        """From the settings shape `{"mon": [["09:00", "18:00"]], …}`; a missing mapping is always open."""
        if hours is None:
            days: dict[int, tuple[Range, ...]] = {d: ((time(0), None),) for d in range(7)}
        else:
            unknown = set(hours) - set(DAYS)
            if unknown:
                raise HoursError(f"unknown day '{sorted(unknown)[0]}'; use mon, tue, wed, thu, fri, sat, sun")
            days = {i: tuple(_parse_range(r) for r in hours.get(name) or ()) for i, name in enumerate(DAYS)}
        dates = set()
        for text in closed:
            try:
                dates.add(date.fromisoformat(text))
            except (TypeError, ValueError):
                raise HoursError(f"'{text}' is not a date; write it as YYYY-MM-DD") from None
        return cls(tz, days, frozenset(dates))

    # reading ---------------------------------------------------------------------------------------

    def is_open(self, instant: datetime) -> bool:
        wall = instant.astimezone(zone(self.tz))
        if wall.date() in self.closed:
            return False
        clock = wall.time().replace(tzinfo=None, fold=0)
        return any(start <= clock and (end is None or clock < end) for start, end in self.days.get(wall.weekday(), ()))

    def intervals(self, since: datetime, days: int = HORIZON_DAYS) -> list[Interval]:
        """The open stretches from `since` (clipped to it) for `days` days, exact to the second."""
        tz = zone(self.tz)
        first = since.astimezone(tz).date() - timedelta(days=1)
        points: set[datetime] = {since}
        for offset in range(days + 2):
            day = first + timedelta(days=offset)
            if day in self.closed:
                continue
            for start, end in self.days.get(day.weekday(), ()):
                walls = [datetime.combine(day, start)]
                walls.append(datetime.combine(day + timedelta(days=1), time(0)) if end is None else datetime.combine(day, end))
                for wall in walls:
                    for fold in (0, 1):
                        points.add(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC))
        horizon = since + timedelta(days=days)
        ordered = sorted(p for p in points if since <= p <= horizon)
        if not ordered or ordered[-1] < horizon:
            ordered.append(horizon)
        ordered = _with_transitions(ordered, tz)
        found: list[Interval] = []
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b <= a or not self.is_open(a + (b - a) / 2):
                continue
            if found and found[-1][1] == a:
                found[-1] = (found[-1][0], b)
            else:
                found.append((a, b))
        return found

    def next_fit(self, since: datetime, seconds: float, days: int = HORIZON_DAYS) -> datetime | None:
        """The earliest moment from `since` when a ring of `seconds` lies wholly inside open hours."""
        for start, end in self.intervals(since, days):
            begin = max(start, since)
            if (end - begin).total_seconds() >= seconds:
                return begin
        return None

    def fits(self, instant: datetime, seconds: float) -> bool:
        return self.next_fit(instant, seconds, days=2) == instant


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def _with_transitions(points: list[datetime], tz: ZoneInfo) -> list[datetime]:
    """Add the instants where the zone's offset changes, found by bisection between neighbours."""
    result = [points[0]]
    for a, b in zip(points, points[1:], strict=False):
        if _offset(a, tz) != _offset(b, tz):
            lo, hi = a, b
            while (hi - lo) > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    break
                if _offset(mid, tz) == _offset(lo, tz):
                    lo = mid
                else:
                    hi = mid
            result.append(hi)
        result.append(b)
    return sorted(set(result))


def next_allowed(
    since: datetime, schedules: Sequence[Weekly], seconds: float, days: int = HORIZON_DAYS
) -> datetime | None:
    """The earliest moment from `since` when a ring of `seconds` fits inside every schedule at once."""
    current = since
    limit = since + timedelta(days=days)
    while current <= limit:
        moved = False
        for schedule in schedules:
            fit = schedule.next_fit(current, seconds, days=max(1, (limit - current).days + 1))
            if fit is None:
                return None
            if fit > current:
                current, moved = fit, True
        if not moved:
            return current
    return None


def earliest_for_any(
    since: datetime, common: Sequence[Weekly], each: Sequence[Weekly | None], seconds: float
) -> datetime | None:
    """The earliest allowed moment for the common schedules together with any one of `each` (managers)."""
    if not each or any(s is None for s in each):
        return next_allowed(since, common, seconds)
    found = [next_allowed(since, [*common, s], seconds) for s in each if s is not None]
    moments = [m for m in found if m is not None]
    return min(moments) if moments else None
