"""The daily caps' rules: the site's own day, when a cap is reached, what becomes of a request over one."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dialer.core.caps import Day, OverCap, Reached, applies, calls_reached, local_day, over_cap, spend_reached
from dialer.core.states import LeadStatus

WARSAW = ZoneInfo("Europe/Warsaw")
LATE = datetime(2026, 11, 2, 22, 30, tzinfo=UTC)  # 23:30 in Warsaw, 07:30 the next day in Tokyo


def test_the_day_is_the_sites_own() -> None:
    day = local_day("Europe/Warsaw", LATE)
    assert day == Day(datetime(2026, 11, 2, tzinfo=WARSAW), datetime(2026, 11, 3, tzinfo=WARSAW), "2026-11-02")
    # The same moment is already the next day in Tokyo.
    assert local_day("Asia/Tokyo", LATE).label == "2026-11-03"


def test_caps_count_todays_calls_only() -> None:
    day = local_day("Europe/Warsaw", LATE)
    assert applies("call", None, day)
    assert applies("call", day.end - timedelta(minutes=1), day)
    assert not applies("call", day.end, day)  # booked for tomorrow: tomorrow's cap
    assert not applies("message", None, day)


def test_a_cap_is_reached_at_its_count_and_none_is_no_cap() -> None:
    assert calls_reached(3, 2) is None
    assert calls_reached(3, 3) == Reached("daily_call_cap", "daily cap of 3 calls reached")
    assert calls_reached(0, 0) is not None
    assert calls_reached(None, 10**6) is None
    assert spend_reached(Decimal("5"), Decimal("4.99"), "USD") is None
    assert spend_reached(Decimal("5"), Decimal("5.20"), "EUR") == Reached(
        "daily_spend_cap", "daily spending cap of 5 EUR reached (5.20)")
    assert spend_reached(None, Decimal("1000"), "USD") is None


def test_over_a_cap_a_request_is_kept_as_a_message() -> None:
    day = local_day("Europe/Warsaw", LATE)
    over = over_cap(Reached("daily_call_cap", "daily cap of 3 calls reached"), "message", time(9, 0), day,
                    "Europe/Warsaw", LATE)
    assert over == OverCap("message", LeadStatus.RECEIVED, None, None,
                           "daily cap of 3 calls reached: kept as a message instead of calling")


def test_over_a_cap_a_request_can_be_called_the_next_morning_in_the_sites_time() -> None:
    day = local_day("Europe/Warsaw", LATE)
    over = over_cap(Reached("daily_spend_cap", "daily spending cap of 5 USD reached (5)"), "next_day", time(8, 15), day,
                    "Europe/Warsaw", LATE)
    assert over == OverCap(
        "call", LeadStatus.SCHEDULED, datetime(2026, 11, 3, 8, 15, tzinfo=WARSAW), LATE,
        "daily spending cap of 5 USD reached (5): scheduled for 2026-11-03 08:15 instead of calling now",
    )
    assert over.scheduled_for is not None and over.scheduled_for.utcoffset() == timedelta(hours=1)  # CET
