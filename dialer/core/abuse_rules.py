"""A site's abuse protection rules, from `sites.settings["abuse"]`: every key optional, with safe defaults.

Protection is on by default; an owner loosens or tightens it per site. A value that does not make sense
(a string where a number belongs) keeps the default rather than turning protection off.

    {"countries": ["PL", "DE"] | "any", "refused_number_types": ["premium_rate", …], "blocked": ["+44870"],
     "form_token": true, "min_fill_seconds": 3, "form_token_max_age": 21600, "captcha": {…},
     "rate_limits": {"ip": {"limit": 5, "window": 3600} | null, "network": …, "visitor": …, "phone": …,
                     "site": …},
     "one_active_per_number": true, "daily_calls": 100 | null, "daily_spend": "50" | null,
     "over_cap": "message" | "next_day", "next_day_at": "09:00"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any

from dialer.core.hours import HoursError, parse_hhmm
from dialer.core.settings_json import Problems, read_bool, read_count, read_object, read_strings

# Number types (phonenumbers' names, lower case), each one on one side by choice; a test checks that every
# type phonenumbers knows is on one of them. Called by default: the numbers a person answers.
DEFAULT_ACCEPTED_TYPES = ("fixed_line", "mobile", "fixed_line_or_mobile", "toll_free")
# Refused by default: numbers that cost the caller money (premium rate, shared cost), that forward to
# somewhere unknown or can be had by anyone in a minute (personal numbers, VoIP, a company's UAN), that
# reach no person (pagers, voicemail) or that phonenumbers cannot place. A site that wants to call one of
# these lists its own `refused_number_types`.
DEFAULT_REFUSED_TYPES = (
    "premium_rate", "shared_cost", "uan", "voicemail", "unknown", "personal_number", "pager", "voip",
)
# limit per window (seconds), per scope: a few requests per visitor, many per site. "network" is the
# visitor's /24 (IPv4) or /48 (IPv6): many addresses of one provider or botnet block share it.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "ip": (5, 3600),
    "network": (20, 3600),
    "visitor": (5, 3600),
    "phone": (5, 86400),
    "site": (200, 3600),
}
DEFAULT_MIN_FILL_SECONDS = 3
DEFAULT_FORM_TOKEN_MAX_AGE = 6 * 3600
DEFAULT_DAILY_CALLS = 100
DEFAULT_DAILY_SPEND = Decimal("50")
DEFAULT_NEXT_DAY_AT = time(9)
OVER_CAP_MODES = ("message", "next_day")
# Every guard off: for load generators (benchmarks, tests about other things) that send thousands of
# requests from one address without a widget. Never for a public site.
UNGUARDED: dict[str, Any] = {
    "form_token": False,
    "rate_limits": {"ip": None, "network": None, "visitor": None, "phone": None, "site": None},
    "one_active_per_number": False,
    "daily_calls": None,
    "daily_spend": None,
}


@dataclass(frozen=True, eq=False)
class AbuseRules:
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
    next_day_at: time = DEFAULT_NEXT_DAY_AT


def read_abuse(settings: Mapping[str, Any], country: str, any_country: bool, problems: Problems) -> AbuseRules:
    raw = read_object(settings.get("abuse"), "abuse", problems)
    over_cap = raw.get("over_cap")
    if over_cap is not None and over_cap not in OVER_CAP_MODES:
        problems.note("abuse.over_cap", over_cap, "message or next_day", "message")
    captcha = raw.get("captcha")
    if captcha is not None and not isinstance(captcha, dict):
        problems.note("abuse.captcha", captcha, "an object", "no CAPTCHA")
    return AbuseRules(
        countries=_countries(raw.get("countries", settings.get("countries")), country, any_country, problems),
        refused_types=frozenset(read_strings(raw.get("refused_number_types"), "abuse.refused_number_types",
                                             DEFAULT_REFUSED_TYPES, problems)),
        blocked=read_strings(raw.get("blocked"), "abuse.blocked", (), problems, show=False),
        form_token=read_bool(raw.get("form_token"), "abuse.form_token", True, problems),
        min_fill_seconds=read_count(raw.get("min_fill_seconds"), "abuse.min_fill_seconds",
                                    DEFAULT_MIN_FILL_SECONDS, problems),
        form_token_max_age=read_count(raw.get("form_token_max_age"), "abuse.form_token_max_age",
                                      DEFAULT_FORM_TOKEN_MAX_AGE, problems),
        captcha=captcha if isinstance(captcha, dict) else None,
        rate_limits=_rate_limits(raw.get("rate_limits"), problems),
        one_active_per_number=read_bool(raw.get("one_active_per_number"), "abuse.one_active_per_number", True,
                                        problems),
        daily_calls=_cap_count(raw, problems),
        daily_spend=_cap_money(raw, problems),
        over_cap=over_cap if over_cap in OVER_CAP_MODES else "message",
        next_day_at=_next_day_at(raw.get("next_day_at"), problems),
    )


def _countries(value: Any, country: str, any_country: bool, problems: Problems) -> tuple[str, ...] | None:
    if any_country or value == "any":
        return None
    listed = tuple(c.upper() for c in read_strings(value, "abuse.countries", (), problems))
    return listed or (country,)


def _cap_count(raw: Mapping[str, Any], problems: Problems) -> int | None:
    """`null` switches the cap off; a missing key or an unreadable value keeps the default."""
    if "daily_calls" in raw and raw["daily_calls"] is None:
        return None
    return read_count(raw.get("daily_calls"), "abuse.daily_calls", DEFAULT_DAILY_CALLS, problems)


def _cap_money(raw: Mapping[str, Any], problems: Problems) -> Decimal | None:
    if "daily_spend" not in raw:
        return DEFAULT_DAILY_SPEND
    value = raw["daily_spend"]
    if value is None:
        return None
    try:
        amount = None if isinstance(value, bool) else Decimal(str(value))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        problems.note("abuse.daily_spend", value, "an amount from 0 up", str(DEFAULT_DAILY_SPEND))
        return DEFAULT_DAILY_SPEND
    return amount


def _rate_limits(value: Any, problems: Problems) -> dict[str, tuple[int, int] | None]:
    limits: dict[str, tuple[int, int] | None] = dict(DEFAULT_RATE_LIMITS)
    raw = read_object(value, "abuse.rate_limits", problems)
    for scope, (default_limit, default_window) in DEFAULT_RATE_LIMITS.items():
        if scope not in raw:
            continue
        given = raw[scope]
        where = f"abuse.rate_limits.{scope}"
        if given is None:
            limits[scope] = None  # this limit switched off
        elif isinstance(given, dict):
            limit = read_count(given.get("limit"), where + ".limit", default_limit, problems)
            window = read_count(given.get("window"), where + ".window", default_window, problems) or default_window
            limits[scope] = (limit, window)
        else:
            problems.note(where, given, "an object or null", "the default limit")
    return limits


def _next_day_at(value: Any, problems: Problems) -> time:
    if value is None:
        return DEFAULT_NEXT_DAY_AT
    try:
        found = parse_hhmm(value)
    except HoursError:
        found = None
    if found is None:  # unreadable, or 24:00 (which is no time of the next day)
        problems.note("abuse.next_day_at", value, "a time of day such as 09:00", "09:00")
        return DEFAULT_NEXT_DAY_AT
    return found
