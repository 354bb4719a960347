"""A site's abuse protection settings: `sites.settings["abuse"]`, every key optional, with safe defaults.

Protection is on by default; an owner loosens or tightens it per site. Values an owner wrote that do not
make sense (a string where a number belongs) fall back to the default rather than turning protection off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from dialer.db.models import Site

# Number types (phonenumbers' names, lower case) that cost the caller money or reach no person.
DEFAULT_REFUSED_TYPES = ("premium_rate", "shared_cost", "uan", "voicemail", "unknown")
# limit per window (seconds), per scope: a few requests per visitor, many per site.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "ip": (5, 3600),
    "visitor": (5, 3600),
    "phone": (5, 86400),
    "site": (200, 3600),
}
DEFAULT_MIN_FILL_SECONDS = 3
DEFAULT_FORM_TOKEN_MAX_AGE = 6 * 3600
DEFAULT_DAILY_CALLS = 100
DEFAULT_DAILY_SPEND = Decimal("50")
OVER_CAP_MODES = ("message", "next_day")
# Every guard off: for load generators (benchmarks, tests about other things) that send thousands of
# requests from one address without a widget. Never for a public site.
UNGUARDED: dict[str, Any] = {
    "form_token": False,
    "rate_limits": {"ip": None, "visitor": None, "phone": None, "site": None},
    "one_active_per_number": False,
    "daily_calls": None,
    "daily_spend": None,
}


@dataclass(frozen=True)
class AbuseSettings:
    countries: tuple[str, ...] | None  # None: any country
    refused_types: frozenset[str] = frozenset(DEFAULT_REFUSED_TYPES)
    blocked: tuple[str, ...] = ()  # E.164 numbers and prefixes ("+44870")
    form_token: bool = True
    min_fill_seconds: int = DEFAULT_MIN_FILL_SECONDS
    form_token_max_age: int = DEFAULT_FORM_TOKEN_MAX_AGE
    captcha: dict[str, Any] | None = None
    rate_limits: dict[str, tuple[int, int] | None] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    one_active_per_number: bool = True
    daily_calls: int | None = DEFAULT_DAILY_CALLS
    daily_spend: Decimal | None = DEFAULT_DAILY_SPEND
    over_cap: str = "message"
    next_day_at: str = "09:00"


def for_site(site: Site) -> AbuseSettings:
    settings = site.settings or {}
    raw = settings.get("abuse")
    raw = raw if isinstance(raw, dict) else {}
    return AbuseSettings(
        countries=_countries(site, raw.get("countries", settings.get("countries"))),
        refused_types=frozenset(_strings(raw.get("refused_number_types"), DEFAULT_REFUSED_TYPES)),
        blocked=tuple(_strings(raw.get("blocked"), ())),
        form_token=_bool(raw.get("form_token"), True),
        min_fill_seconds=_count(raw.get("min_fill_seconds"), DEFAULT_MIN_FILL_SECONDS),
        form_token_max_age=_count(raw.get("form_token_max_age"), DEFAULT_FORM_TOKEN_MAX_AGE),
        captcha=raw["captcha"] if isinstance(raw.get("captcha"), dict) else None,
        rate_limits=_rate_limits(raw.get("rate_limits")),
        one_active_per_number=_bool(raw.get("one_active_per_number"), True),
        daily_calls=_cap(raw.get("daily_calls", DEFAULT_DAILY_CALLS), _count, DEFAULT_DAILY_CALLS),
        daily_spend=_cap(raw.get("daily_spend", DEFAULT_DAILY_SPEND), _money, DEFAULT_DAILY_SPEND),
        over_cap=raw.get("over_cap") if raw.get("over_cap") in OVER_CAP_MODES else "message",
        next_day_at=_clock_time(raw.get("next_day_at")),
    )


def _countries(site: Site, value: Any) -> tuple[str, ...] | None:
    if site.any_country or value == "any":
        return None
    listed = tuple(c.upper() for c in _strings(value, ()))
    return listed or (site.country,)


def _strings(value: Any, default: tuple[str, ...]) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return list(default)


def _bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _money(value: Any, default: Decimal) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return default
    return amount if amount.is_finite() and amount >= 0 else default


def _cap(value: Any, read: Any, default: Any) -> Any:
    """`null` switches a cap off; anything else unreadable keeps the default."""
    return None if value is None else read(value, default)


def _rate_limits(value: Any) -> dict[str, tuple[int, int] | None]:
    limits: dict[str, tuple[int, int] | None] = dict(DEFAULT_RATE_LIMITS)
    if not isinstance(value, dict):
        return limits
    for scope in DEFAULT_RATE_LIMITS:
        if scope not in value:
            continue
        given = value[scope]
        if given is None:
            limits[scope] = None  # this limit switched off
        elif isinstance(given, dict):
            limit = _count(given.get("limit"), DEFAULT_RATE_LIMITS[scope][0])
            window = _count(given.get("window"), DEFAULT_RATE_LIMITS[scope][1]) or DEFAULT_RATE_LIMITS[scope][1]
            limits[scope] = (limit, window)
    return limits


def _clock_time(value: Any) -> str:
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        hours, minutes = value[:2], value[3:]
        if hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60:
            return value
    return "09:00"
