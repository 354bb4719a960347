"""Calling windows: named cases and properties over random times, zones and schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.core.hours import HoursError, Weekly, next_allowed

VISITOR = Weekly.every_day("Asia/Vladivostok", time(8), time(22))
RING = 20


def at(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def test_a_visitor_in_vladivostok_at_3am_is_called_at_8_their_time() -> None:
    now = at("Asia/Vladivostok", 2026, 11, 23, 3, 0)
    result = next_allowed(now, [VISITOR], RING)
    assert result == at("Asia/Vladivostok", 2026, 11, 23, 8, 0)


def test_a_ring_that_ends_before_22_is_placed_one_at_22_is_not() -> None:
    window = Weekly.every_day("Europe/Warsaw", time(8), time(22))
    just_in = at("Europe/Warsaw", 2026, 11, 23, 21, 59, 30)
    assert next_allowed(just_in, [window], RING) == just_in
    closing = at("Europe/Warsaw", 2026, 11, 23, 22, 0, 0)
    assert next_allowed(closing, [window], RING) == at("Europe/Warsaw", 2026, 11, 24, 8, 0)
    too_late = at("Europe/Warsaw", 2026, 11, 23, 21, 59, 45)  # the ring would run past 22:00
    assert next_allowed(too_late, [window], RING) == at("Europe/Warsaw", 2026, 11, 24, 8, 0)


def test_a_friday_evening_request_waits_for_monday_opening() -> None:
    shop = Weekly.from_config("Europe/Warsaw", {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    friday = at("Europe/Warsaw", 2026, 11, 27, 19, 30)
    visitor = Weekly.every_day("Europe/Warsaw", time(8), time(22))
    assert next_allowed(friday, [visitor, shop], RING) == at("Europe/Warsaw", 2026, 11, 30, 9, 0)


def test_closed_dates_are_skipped() -> None:
    shop = Weekly.from_config("Europe/Warsaw", None, closed=["2026-12-24", "2026-12-25"])
    eve = at("Europe/Warsaw", 2026, 12, 23, 23, 0)
    assert next_allowed(eve + timedelta(hours=1), [shop], RING) == at("Europe/Warsaw", 2026, 12, 26, 0, 0)


def test_both_windows_must_agree_across_zones() -> None:
    # 08:00 in Warsaw is 02:00 in New York; the visitor's window opens 6 h later.
    shop = Weekly.every_day("Europe/Warsaw", time(8), time(20))
    visitor = Weekly.every_day("America/New_York", time(8), time(22))
    now = at("Europe/Warsaw", 2026, 11, 23, 7, 0)
    assert next_allowed(now, [shop, visitor], RING) == at("America/New_York", 2026, 11, 23, 8, 0)


def test_the_spring_gap_opens_at_the_first_real_instant() -> None:
    # On 2026-03-29 Warsaw jumps from 02:00 to 03:00: a window from 02:30 opens at 03:00.
    window = Weekly.every_day("Europe/Warsaw", time(2, 30), time(5))
    now = at("Europe/Warsaw", 2026, 3, 29, 0, 0)
    assert next_allowed(now, [window], RING) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_the_autumn_overlap_counts_wall_time_both_times() -> None:
    # On 2026-10-25 Warsaw lives 02:00-03:00 twice; a window ending 02:30 is open in both.
    window = Weekly.every_day("Europe/Warsaw", time(1), time(2, 30))
    first_pass_closed = datetime(2026, 10, 25, 0, 45, tzinfo=UTC)  # 02:45 CEST
    assert not window.is_open(first_pass_closed)
    assert next_allowed(first_pass_closed, [window], RING) == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 CET


def test_bad_schedules_say_what_is_wrong() -> None:
    with pytest.raises(HoursError, match="HH:MM"):
        Weekly.from_config("UTC", {"mon": [["9am", "18:00"]]})
    with pytest.raises(HoursError, match="after the start"):
        Weekly.from_config("UTC", {"mon": [["18:00", "09:00"]]})
    with pytest.raises(HoursError, match="unknown day"):
        Weekly.from_config("UTC", {"monday": [["09:00", "18:00"]]})
    with pytest.raises(HoursError, match="YYYY-MM-DD"):
        Weekly.from_config("UTC", None, closed=["25/12"])


ZONES = ["Europe/Warsaw", "America/New_York", "Asia/Kolkata", "Asia/Vladivostok", "Australia/Lord_Howe",
         "America/Santiago", "UTC"]
quarter = st.integers(0, 95).map(lambda q: time(q // 4, (q % 4) * 15))


@st.composite
def weekly(draw: st.DrawFn) -> Weekly:
    tz = draw(st.sampled_from(ZONES))
    days = {}
    for d in range(7):
        if draw(st.booleans()) or d == 2:
            start = draw(quarter)
            length = draw(st.integers(1, 64)) * 15
            end_minutes = start.hour * 60 + start.minute + length
            end = None if end_minutes >= 24 * 60 else time(end_minutes // 60, end_minutes % 60)
            days[d] = ((start, end),)
    return Weekly(tz, days)


# Instants around the DST changes of 2026 and anywhere else in the year.
DST_DAYS = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 9, 6), date(2026, 10, 4),
            date(2026, 10, 25), date(2026, 11, 1)]
instants = st.one_of(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)),
    st.builds(lambda d, s: datetime.combine(d, time(0)) + timedelta(seconds=s), st.sampled_from(DST_DAYS),
              st.integers(-86400, 2 * 86400)),
).map(lambda d: d.replace(tzinfo=UTC, microsecond=0))


def _fits(schedules: list[Weekly], start: datetime, ring: int) -> bool:
    probes = [start + timedelta(seconds=s) for s in range(0, ring, 10)] + [start + timedelta(seconds=ring - 1)]
    return all(s.is_open(p) for s in schedules for p in probes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(now=instants, schedules=st.lists(weekly(), min_size=1, max_size=3), ring=st.sampled_from([20, 45]))
def test_no_call_outside_any_window_and_none_later_than_needed(now: datetime, schedules: list[Weekly],
                                                                ring: int) -> None:
    result = next_allowed(now, schedules, ring, days=9)
    if result is None:
        return
    assert result >= now
    assert _fits(schedules, result, ring)  # never outside any window
    # Never later than necessary by more than a minute: no earlier whole minute fits.
    probe = now.replace(second=0) + timedelta(minutes=1)
    while probe < result - timedelta(minutes=1):
        assert not _fits(schedules, probe, ring), f"{probe} fits but {result} was chosen"
        probe += timedelta(minutes=1)


@settings(max_examples=60, deadline=None)
@given(now=instants, tz=st.sampled_from(["Europe/Warsaw", "America/New_York", "Asia/Kolkata"]))
def test_the_default_window_is_8_to_22_local_every_day(now: datetime, tz: str) -> None:
    result = next_allowed(now, [Weekly.every_day(tz, time(8), time(22))], RING)
    assert result is not None
    local = result.astimezone(ZoneInfo(tz))
    assert time(8) <= local.time() and (local + timedelta(seconds=RING)).time() <= time(22)
    assert result - now < timedelta(hours=11)
