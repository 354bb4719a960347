"""Reading a site's config: every settings key the code uses, with its default; a part that cannot be read
is named in `problems` and its default used, the rest of the settings still apply."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from dialer.core import abuse_rules
from dialer.core.hours import Weekly
from dialer.core.site_config import SiteConfig, read

COLUMNS = {"id": 7, "key": "shop", "name": "Shop", "timezone": "Europe/Warsaw", "country": "PL", "caller_id": None,
           "currency": "PLN", "consent_required": False, "consent_text": None, "recording": False,
           "routing": "sequential", "any_country": False, "origins": ["https://shop.example"]}


class Manager:
    def __init__(self, manager_id: int, working_hours: dict[str, Any] | None) -> None:
        self.id, self.working_hours = manager_id, working_hours


def config(settings: Any = None, managers: list[Manager] | None = None, **columns: Any) -> SiteConfig:
    return read({**COLUMNS, **columns, "settings": settings if settings is not None else {}}, managers or [])


def test_a_site_with_no_settings_gets_every_default() -> None:
    site = config()
    assert site.problems == ()
    assert site.calling_window == (time(8), time(22)) and site.business_hours.is_open(datetime(2026, 11, 2, 3, tzinfo=UTC))
    assert site.slot_minutes == 30 and site.slot_capacity is None
    assert site.abuse.countries == ("PL",) and site.abuse.daily_calls == abuse_rules.DEFAULT_DAILY_CALLS
    assert site.widget.language is None and site.widget.position == "bottom-right"
    assert site.widget.colors["accent"] == "#0b6e4f" and site.widget.own_colors == {}
    assert site.origins == ("https://shop.example",) and site.currency == "PLN"


def test_what_an_owner_sets_is_read_once() -> None:
    site = config({
        "calling_window": ["00:00", "24:00"], "business_hours": {"mon": [["09:00", "24:00"]]},
        "closed_dates": ["2026-12-25"], "slot_minutes": 15, "slot_capacity": 2, "language": "de",
        "texts": {"button": "Anrufen", "pl": {"title": "Zadzwonimy"}}, "colors": {"accent": "#5b21b6"},
        "position": "bottom-left", "triggers": {"after_seconds": 30, "exit_intent": True},
        "exclude": ["/checkout*"], "abuse": {"countries": ["pl", "de"], "daily_spend": "12.5",
                                             "over_cap": "next_day", "next_day_at": "10:30"},
    })
    assert site.problems == ()
    assert site.calling_window == (time(0), None)  # 24:00 is the end of the day
    assert site.business_hours.days[0] == ((time(9), None),) and site.business_hours.days[1] == ()
    assert site.business_hours.closed == frozenset({date(2026, 12, 25)})
    assert (site.slot_minutes, site.slot_capacity) == (15, 2)
    assert site.widget.language == "de" and site.widget.texts == {"button": "Anrufen"}
    assert site.widget.texts_by_language == {"pl": {"title": "Zadzwonimy"}}
    assert site.widget.colors["accent"] == "#5b21b6" and site.widget.colors["accent_text"] == "#ffffff"
    assert site.widget.position == "bottom-left" and site.widget.triggers.after_seconds == 30
    assert site.widget.exclude == ("^/checkout.*$",)
    assert site.abuse.countries == ("PL", "DE") and site.abuse.daily_spend == Decimal("12.5")
    assert site.abuse.over_cap == "next_day" and site.abuse.next_day_at == time(10, 30)


def test_each_part_that_cannot_be_read_falls_back_alone_and_is_named() -> None:
    site = config({
        "calling_window": ["22:00", "08:00"], "business_hours": {"mon": "9-5"}, "closed_dates": ["2026-12-25", "xmas"],
        "slot_minutes": "thirty", "colors": {"accent": "green", "panel": "#fffbeb"}, "position": "top",
        "triggers": {"after_seconds": "soon"}, "texts": {"button": 5, "title": "Hello"},
        "abuse": {"form_token": "no", "daily_calls": "many", "next_day_at": "24:00", "rate_limits": {"ip": 3}},
    }, timezone="Mars/Olympus", routing="random")
    where = sorted(problem.split(":")[0] for problem in site.problems)
    assert where == sorted([
        "abuse.daily_calls", "abuse.form_token", "abuse.next_day_at", "abuse.rate_limits.ip", "business_hours",
        "calling_window", "closed_dates", "colors.accent", "position", "routing", "slot_minutes", "texts.button",
        "timezone", "triggers.after_seconds",
    ])
    assert site.calling_window == (time(8), time(22)) and site.timezone == "UTC" and site.routing == "sequential"
    assert site.business_hours.days == Weekly.always().days  # around the clock...
    assert site.business_hours.closed == frozenset({date(2026, 12, 25)})  # ...but the good closed date holds
    assert site.slot_minutes == 30 and site.widget.position == "bottom-right"
    assert site.widget.colors["accent"] == "#0b6e4f" and site.widget.colors["panel"] == "#fffbeb"
    assert site.widget.texts == {"title": "Hello"}
    assert site.abuse.form_token is True and site.abuse.daily_calls == abuse_rules.DEFAULT_DAILY_CALLS
    assert site.abuse.next_day_at == time(9) and site.abuse.rate_limits["ip"] == abuse_rules.DEFAULT_RATE_LIMITS["ip"]
    assert any("'xmas'" in p for p in site.problems)  # the owner can find what to fix


def test_settings_that_are_not_an_object_are_no_settings() -> None:
    site = config(["calling_window"])
    assert site.problems == ("settings: a list is not an object; using the defaults",)
    assert site.calling_window == (time(8), time(22))


def test_a_phone_number_never_appears_in_a_problem() -> None:
    site = config({"abuse": {"blocked": "+48501234567"}})
    assert site.problems and "48501234567" not in " ".join(site.problems)
    site = config({"abuse": {"blocked": ["+48501234567", 5]}})
    assert site.abuse.blocked == ("+48501234567",) and "48501234567" not in " ".join(site.problems)


def test_keys_the_dashboard_wrote_before_are_read_as_the_widgets_own() -> None:
    site = config({"colors": {"button": "#7c2d12"}, "texts": {"thanks": "Ta!"}})
    assert site.widget.colors["accent"] == "#7c2d12" and site.widget.texts == {"received": "Ta!"}
    newer = config({"colors": {"button": "#7c2d12", "accent": "#5b21b6"}, "texts": {"thanks": "Ta!", "received": "Ok"}})
    assert newer.widget.colors["accent"] == "#5b21b6" and newer.widget.texts == {"received": "Ok"}


def test_managers_working_hours_are_read_with_the_site_and_kept_while_unchanged() -> None:
    hours = {"mon": [["09:00", "17:00"]]}
    site = config(managers=[Manager(1, hours), Manager(2, None), Manager(3, {"funday": []})])
    assert site.problems == ("manager 3 working_hours: unreadable (unknown day 'funday'; use mon, tue, wed, thu, "
                             "fri, sat, sun); using any time",)
    first = site.hours_of(Manager(1, dict(hours)))
    assert first is not None and first is site.hours_of(Manager(1, dict(hours)))  # read once
    assert first.days[0] == ((time(9), time(17)),)
    assert site.hours_of(Manager(2, None)) is None and site.hours_of(Manager(3, {"funday": []})) is None
    # Changed since the config was read (in another process): the new hours apply at once.
    changed = site.hours_of(Manager(1, {"tue": [["10:00", "12:00"]]}))
    assert changed is not None and changed.days[0] == () and changed.days[1] == ((time(10), time(12)),)
    added = site.hours_of(Manager(4, {"sun": [["08:00", "09:00"]]}))
    assert added is not None and added.days[6] == ((time(8), time(9)),)
