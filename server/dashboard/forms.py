"""Reading the settings forms: every field checked, every problem named in words, nothing half-applied.

A form either yields the complete set of new values or raises `FormErrors` with a message per field.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from dialer.core.errors import InvalidField
from dialer.core.hours import DAYS, HoursError, Weekly, parse_hhmm
from dialer.core.phones import normalise
from dialer.core.texts import is_messaging_service
from dialer.core.widget_look import DEFAULT_COLORS
from dialer.intake.accept import valid_timezone
from server.dashboard import countries

ROUTING = {"sequential": "One after another", "simultaneous": "All at once", "round_robin": "Round robin"}
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")  # as the widget reads colours
# The widget's own keys (server/widget_texts.py, dialer/core/widget_look.py), so what is saved is shown.
TEXTS = {
    "button": ("Button label", 40),
    "title": ("Panel title", 80),
    "received": ("Thank-you message (shown once a message is sent)", 200),
}
COLOURS = {"accent": "Button colour", "accent_text": "Button text colour", "panel": "Panel colour",
           "text": "Panel text colour"}
# What the widget uses when a colour is left empty (a text colour also gives way to one that reads well).
COLOUR_DEFAULTS = {**DEFAULT_COLORS, "accent_text": "#ffffff"}
_OLD_KEYS = {"texts": ("thanks",), "colors": ("button",)}  # written under these before; replaced on saving


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


Form = dict[str, str]


def _text(form: Form, name: str, errors: dict[str, str], *, limit: int, required: str | None = None) -> str:
    value = form.get(name, "").strip()
    if required and not value:
        errors[name] = required
    elif len(value) > limit:
        errors[name] = f"At most {limit} characters, please (this has {len(value)})."
    return value


def _time(value: str, *, end: bool = False) -> bool:
    """A 24-hour time of day; `24:00` (the end of the day) only where a range ends."""
    try:
        found = parse_hhmm(value)
    except HoursError:
        return False
    return found is not None or end


def parse_week(text: str, field: str) -> dict[str, list[list[str]]] | None:
    """'mon-fri 09:00-18:00' / 'sat 10:00-14:00' / 'sun closed' lines -> {"mon": [["09:00", "18:00"]], …}.

    Empty means no limit (around the clock). Days not named are closed.
    """
    lines = [line.strip() for line in text.replace(";", "\n").splitlines() if line.strip()]
    if not lines:
        return None
    week: dict[str, list[list[str]]] = {d: [] for d in DAYS}
    for line in lines:
        head, _, rest = line.partition(" ")
        days = _days(head.lower())
        if days is None:
            raise InvalidField(field, f"'{head}' is not a day: use mon, tue, … sun, or a range such as mon-fri.")
        spans = [s.strip() for s in rest.split(",") if s.strip()]
        if spans == ["closed"]:
            continue
        if not spans:
            raise InvalidField(field, f"Give hours for '{head}', e.g. '{head} 09:00-18:00', or '{head} closed'.")
        for span in spans:
            start, _, end = span.partition("-")
            start, end = start.strip(), end.strip()
            if not (_time(start) and _time(end, end=True)):
                raise InvalidField(field, f"'{span}' is not a time range: write it as 09:00-18:00 (24-hour, "
                                          "up to 24:00).")
            if start >= end:
                raise InvalidField(field, f"In '{span}' the end comes before the start.")
            for day in days:
                week[day].append([start, end])
    for day, spans_ in week.items():
        spans_.sort()
        for (_, first_end), (second_start, _) in zip(spans_, spans_[1:], strict=False):
            if second_start < first_end:
                raise InvalidField(field, f"The hours given for {day} overlap.")
    return week


def _days(token: str) -> list[str] | None:
    if token in DAYS:
        return [token]
    first, _, last = token.partition("-")
    if first in DAYS and last in DAYS and DAYS.index(first) <= DAYS.index(last):
        return list(DAYS[DAYS.index(first): DAYS.index(last) + 1])
    return None


def format_week(week: dict[str, list[list[str]]] | None) -> str:
    if not week:
        return ""
    return "\n".join(
        f"{day} " + (", ".join(f"{a}-{b}" for a, b in week.get(day, [])) or "closed") for day in DAYS
    )


def format_time(moment: time | None) -> str:
    return "24:00" if moment is None else f"{moment:%H:%M}"


def format_hours(hours: Weekly) -> str:
    """Hours as the form writes them; empty when open around the clock."""
    if hours.days == Weekly.always(hours.tz).days:
        return ""
    return "\n".join(
        f"{day} " + (", ".join(f"{format_time(a)}-{format_time(b)}" for a, b in hours.days.get(i, ())) or "closed")
        for i, day in enumerate(DAYS)
    )


def _origins(text: str, errors: dict[str, str]) -> list[str]:
    origins = []
    for raw in text.split():
        parts = urlsplit(raw.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment:
            errors["origins"] = f"'{raw[:80]}' is not an origin: write it as https://shop.example (no path)."
            break
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return sorted(set(origins))


def _dates(text: str, errors: dict[str, str]) -> list[str]:
    out = []
    for raw in text.replace(",", " ").split():
        try:
            out.append(date.fromisoformat(raw).isoformat())
        except ValueError:
            errors["closed_dates"] = f"'{raw[:20]}' is not a date: write dates as 2026-12-25."
            break
    return sorted(set(out))


def parse_site(form: Form, settings: dict[str, Any], *, allowed: tuple[str, ...] | None = (),
               any_country: bool = False) -> dict[str, Any]:
    """The site's new column values and its new `settings` JSON (other keys in it are kept). `allowed` and
    `any_country` are what the site allows now (its config's countries, None for any; its column)."""
    errors: dict[str, str] = {}
    name = _text(form, "name", errors, limit=200, required="A site needs a name.")
    country = form.get("country", "").strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        errors["country"] = "Use a two-letter country code such as US, GB or PL."
    zone = form.get("timezone", "").strip()
    if not valid_timezone(zone):
        errors["timezone"] = f"'{zone[:64]}' is not a time zone name: use one such as Europe/Warsaw."
    caller_id = form.get("caller_id", "").strip() or None
    if caller_id and "country" not in errors:
        try:
            caller_id = normalise(caller_id, country, field="caller_id")
        except InvalidField as exc:
            errors["caller_id"] = exc.message
    sms_sender = form.get("sms_sender", "").strip()
    if sms_sender and not is_messaging_service(sms_sender) and "country" not in errors:
        try:
            sms_sender = normalise(sms_sender, country, field="sms_sender")
        except InvalidField:
            errors["sms_sender"] = ("Write the number texts are sent from (e.g. +12025550100) or a Twilio "
                                    "Messaging Service SID (MG followed by 32 letters and digits).")
    routing = form.get("routing", "")
    if routing not in ROUTING:
        errors["routing"] = "Pick one of: " + ", ".join(ROUTING.values()) + "."
    consent_required = form.get("consent_required") == "on"
    consent_text = _text(form, "consent_text", errors, limit=1000,
                         required="Write the consent text visitors agree to." if consent_required else None)
    new_settings = dict(settings)
    if sms_sender:
        new_settings["sms_sender"] = sms_sender
    else:
        new_settings.pop("sms_sender", None)  # texts go from the caller ID
    for key, field in (("business_hours", "business_hours"),):
        try:
            week = parse_week(form.get(field, ""), field)
        except InvalidField as exc:
            errors[field] = exc.message
        else:
            if week is None:
                new_settings.pop(key, None)
            else:
                new_settings[key] = week
    _put(new_settings, "closed_dates", _dates(form.get("closed_dates", ""), errors))
    start, end = form.get("window_start", "").strip(), form.get("window_end", "").strip()
    if not (_time(start) and _time(end, end=True)):
        errors["calling_window"] = ("Write both ends of the calling window as 24-hour times, e.g. 08:00 and 22:00 "
                                    "(24:00 is the end of the day).")
    elif start >= end:
        errors["calling_window"] = "The calling window must end after it starts."
    new_settings["calling_window"] = [start, end]
    texts = {k: _text(form, f"text_{k}", errors, limit=limit) for k, (_, limit) in TEXTS.items()}
    colours = {}
    for key, label in COLOURS.items():
        value = form.get(f"colour_{key}", "").strip()
        if value and not _COLOUR.match(value):
            errors[f"colour_{key}"] = f"{label}: write a colour as #RRGGBB, e.g. #0b6e4f."
        colours[key] = value.lower()
    _merge(new_settings, "texts", texts)
    _merge(new_settings, "colors", colours)
    origins = _origins(form.get("origins", ""), errors)
    any_country = _allowed_countries(form.get("countries", ""), country, new_settings, errors, allowed, any_country)
    if errors:
        raise FormErrors(errors)
    return {
        "name": name, "origins": origins, "country": country, "timezone": zone, "caller_id": caller_id,
        "routing": routing, "recording": form.get("recording") == "on", "consent_required": consent_required,
        "consent_text": consent_text or None, "settings": new_settings, "any_country": any_country,
    }


def _allowed_countries(text: str, country: str, settings: dict[str, Any], errors: dict[str, str],
                       allowed: tuple[str, ...] | None, any_column: bool) -> bool:
    """Where visitors' numbers may be from: saved as `abuse.countries` (dialer/core/abuse_rules.py).
    Empty, or just the site's own country, follows the site's country; what the site allows already is
    left as it is stored. Returns the site's `any_country` column."""
    try:
        codes = countries.read(text)
    except ValueError as exc:
        errors["countries"] = (f"'{str(exc)[:40]}' is not a country: write names or two-letter codes, e.g. "
                               "Poland, Germany or PL, DE (or 'any').")
        return any_column
    if (codes is None and (any_column or allowed is None)) or (codes is not None and tuple(codes) == allowed):
        return any_column  # unchanged
    abuse = dict(settings.get("abuse") or {}) if isinstance(settings.get("abuse"), dict) else {}
    if codes is None:
        abuse["countries"] = "any"
    elif not codes or codes == [country]:
        abuse.pop("countries", None)
    else:
        abuse["countries"] = codes
    settings.pop("countries", None)  # the older top-level key: replaced by the one under `abuse`
    if abuse:
        settings["abuse"] = abuse
    else:
        settings.pop("abuse", None)
    return False


def _put(settings: dict[str, Any], key: str, value: list[str]) -> None:
    if value:
        settings[key] = value
    else:
        settings.pop(key, None)


def _merge(settings: dict[str, Any], key: str, fields: dict[str, str]) -> None:
    """Set the form's keys of `settings[key]` (an empty field unsets one); keys the form does not show,
    such as one language's wording, are kept."""
    kept = settings.get(key)
    merged = {k: v for k, v in kept.items() if k not in fields and k not in _OLD_KEYS[key]} \
        if isinstance(kept, dict) else {}
    merged.update({k: v for k, v in fields.items() if v})
    if merged:
        settings[key] = merged
    else:
        settings.pop(key, None)


def parse_manager(form: Form, country: str) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = _text(form, "name", errors, limit=200, required="A manager needs a name.")
    phone = form.get("phone", "").strip()
    try:
        phone = normalise(phone, country)
    except InvalidField as exc:
        errors["phone"] = exc.message
    try:
        position = int(form.get("position", "").strip() or "0")
        if not 0 <= position <= 1000:
            raise ValueError
    except ValueError:
        errors["position"] = "The order is a whole number from 0 to 1000 (lower is rung first)."
        position = 0
    try:
        hours = parse_week(form.get("working_hours", ""), "working_hours")
    except InvalidField as exc:
        errors["working_hours"] = exc.message
        hours = None
    if errors:
        raise FormErrors(errors)
    return {"name": name, "phone": phone, "position": position, "active": form.get("active") == "on",
            "working_hours": hours}
