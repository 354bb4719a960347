"""A site's configuration as one immutable value, read once when its row is loaded: the columns the code
uses and every part of the owner-edited `sites.settings` JSON, each checked, with its default.

Settings keys read here (all optional):
- `calling_window`: `["08:00", "22:00"]`, when visitors may be called, in their own time zone (`24:00` is
  the end of the day);
- `business_hours`: `{"mon": [["09:00", "18:00"]], …}` in the site's time zone (missing: around the clock);
- `closed_dates`: `["2026-12-25", …]` in the site's time zone;
- `slot_minutes` (default 30) and `slot_capacity` (callbacks per slot; default the number of active
  managers): the times a visitor may pick;
- `abuse` (and the older top-level `countries`): `abuse_rules.py`;
- `sms_sender`: the number (E.164) or Twilio Messaging Service SID (`MG…`) texts to visitors are sent
  from, when it is not the caller ID (a verified caller ID cannot send texts); missing: the caller ID;
- `language`, `texts`, `colors`, `position`, `triggers`, `exclude`, `hide_on`: `widget_look.py`.
Managers' `working_hours` (their own column, the business-hours shape, in the site's time zone) are read
with the site.

Reading is pure: what cannot be read is listed in `problems` and its default used; the loader
(`dialer/sites/config.py`) logs each problem once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any, Protocol

from dialer.core.abuse_rules import AbuseRules, read_abuse
from dialer.core.hours import HoursError, Weekly, parse_hhmm, zone
from dialer.core.settings_json import Problems, read_object, read_strings
from dialer.core.texts import is_sender
from dialer.core.widget_look import WidgetLook, read_widget

DEFAULT_WINDOW = (time(8), time(22))
DEFAULT_SLOT_MINUTES = 30
MAX_SLOT_MINUTES = 24 * 60
ROUTINGS = ("sequential", "simultaneous", "round_robin")


class ManagerLike(Protocol):
    id: int
    working_hours: dict[str, Any] | None


@dataclass(frozen=True, eq=False)
class ManagerHours:
    raw: Any  # the `working_hours` JSON this was read from
    weekly: Weekly | None  # None: any time


@dataclass(frozen=True, eq=False)
class SiteConfig:
    id: int
    key: str
    name: str
    timezone: str
    country: str
    caller_id: str | None
    currency: str
    consent_required: bool
    consent_text: str | None
    recording: bool
    routing: str
    any_country: bool
    origins: tuple[str, ...]
    calling_window: tuple[time, time | None]  # end None: midnight at the end of the day
    business_hours: Weekly  # with the closed dates
    slot_minutes: int
    slot_capacity: int | None  # None: the number of active managers
    abuse: AbuseRules
    widget: WidgetLook
    manager_hours: Mapping[int, ManagerHours] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    sms_sender_setting: str | None = None  # `sms_sender`, when set and readable

    @property
    def sms_sender(self) -> str | None:
        """Where texts to visitors are sent from: the `sms_sender` setting, else the caller ID."""
        return self.sms_sender_setting or self.caller_id

    def visitor_window(self, visitor_tz: str) -> Weekly:
        start, end = self.calling_window
        return Weekly.every_day(visitor_tz, start, end)

    def hours_of(self, manager: ManagerLike) -> Weekly | None:
        """The manager's working hours; None: any time."""
        raw = manager.working_hours
        if not raw:
            return None
        known = self.manager_hours.get(manager.id)
        if known is not None and known.raw == raw:
            return known.weekly
        # Added or changed (in another process) since this config was read; the next read reports problems.
        return _working_hours(self.timezone, manager.id, raw, Problems())


def read(columns: Mapping[str, Any], managers: Iterable[ManagerLike] = ()) -> SiteConfig:
    """The config of the site with these column values (a `sites` row) and these active managers."""
    problems = Problems()
    settings = read_object(columns.get("settings"), "settings", problems)
    tz = _timezone(columns.get("timezone"), problems)
    country = str(columns.get("country") or "US")
    any_country = bool(columns.get("any_country"))
    routing = columns.get("routing") or ROUTINGS[0]
    if routing not in ROUTINGS:
        problems.note("routing", routing, "one of " + ", ".join(ROUTINGS), ROUTINGS[0])
        routing = ROUTINGS[0]
    return SiteConfig(
        id=int(columns["id"]),
        key=str(columns["key"]),
        name=str(columns.get("name") or ""),
        timezone=tz,
        country=country,
        caller_id=columns.get("caller_id") or None,
        currency=str(columns.get("currency") or "USD"),
        consent_required=bool(columns.get("consent_required")),
        consent_text=columns.get("consent_text") or None,
        recording=bool(columns.get("recording")),
        routing=routing,
        any_country=any_country,
        origins=tuple(read_strings(columns.get("origins"), "origins", (), problems)),
        calling_window=_calling_window(settings.get("calling_window"), problems),
        business_hours=_business_hours(tz, settings, problems),
        slot_minutes=_slot_minutes(settings.get("slot_minutes"), problems),
        slot_capacity=_slot_capacity(settings.get("slot_capacity"), problems),
        abuse=read_abuse(settings, country, any_country, problems),
        widget=read_widget(settings, problems),
        manager_hours={
            m.id: ManagerHours(m.working_hours, _working_hours(tz, m.id, m.working_hours, problems))
            for m in managers
        },
        sms_sender_setting=_sms_sender(settings.get("sms_sender"), problems),
        problems=tuple(problems.found),
    )


def _sms_sender(value: Any, problems: Problems) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, str) and is_sender(value.strip()):
        return value.strip()
    problems.note("sms_sender", value, "a number such as +12025550100 or a Messaging Service SID (MG…)",
                  "the caller ID")
    return None


def _timezone(value: Any, problems: Problems) -> str:
    try:
        zone(value)
    except Exception:  # zoneinfo raises several kinds for a name it cannot use
        problems.note("timezone", value, "a known time zone", "UTC")
        return "UTC"
    return str(value)


def _calling_window(value: Any, problems: Problems) -> tuple[time, time | None]:
    if value is None:
        return DEFAULT_WINDOW
    try:
        if not isinstance(value, list) or len(value) != 2:
            raise HoursError("it is a pair of times such as [\"08:00\", \"22:00\"]")
        start, end = parse_hhmm(value[0]), parse_hhmm(value[1])
        if start is None:
            raise HoursError("it cannot start at 24:00")
        if end is not None and end <= start:
            raise HoursError("its end must come after its start")
    except HoursError as exc:
        problems.add(f"calling_window: unreadable ({exc}); using 08:00–22:00")
        return DEFAULT_WINDOW
    return start, end


def _weekly(tz: str, hours: Any, where: str, default: str, problems: Problems) -> Weekly | None:
    """The business-hours shape read in `tz`; None when absent or unreadable."""
    if hours is None:
        return None
    try:
        if not isinstance(hours, dict):
            raise HoursError("it is an object of days such as {\"mon\": [[\"09:00\", \"18:00\"]]}")
        for name, ranges in hours.items():
            if ranges is not None and not isinstance(ranges, list):
                raise HoursError(f"the hours of '{name}' are a list of ranges")
        return Weekly.from_config(tz, hours)
    except HoursError as exc:
        problems.add(f"{where}: unreadable ({exc}); using {default}")
        return None


def _business_hours(tz: str, settings: Mapping[str, Any], problems: Problems) -> Weekly:
    open_hours = _weekly(tz, settings.get("business_hours"), "business_hours", "around the clock", problems)
    closed = set()
    for text in read_strings(settings.get("closed_dates"), "closed_dates", (), problems):
        try:
            closed.add(date.fromisoformat(text))
        except ValueError:
            problems.note("closed_dates", text, "a date such as 2026-12-25", "open that day")
    days = open_hours.days if open_hours is not None else Weekly.always(tz).days
    return Weekly(tz, days, frozenset(closed))


def _working_hours(tz: str, manager_id: int, raw: Any, problems: Problems) -> Weekly | None:
    if not raw:
        return None
    return _weekly(tz, raw, f"manager {manager_id} working_hours", "any time", problems)


def _slot_minutes(value: Any, problems: Problems) -> int:
    if value is None:
        return DEFAULT_SLOT_MINUTES
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SLOT_MINUTES:
        return value
    problems.note("slot_minutes", value, f"a whole number of minutes from 1 to {MAX_SLOT_MINUTES}",
                  str(DEFAULT_SLOT_MINUTES))
    return DEFAULT_SLOT_MINUTES


def _slot_capacity(value: Any, problems: Problems) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    problems.note("slot_capacity", value, "a whole number from 1 up", "the number of active managers")
    return None
