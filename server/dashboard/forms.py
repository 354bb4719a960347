"""Reading the settings forms: every field checked, every problem named in words, nothing half-applied.

A form either yields the complete set of new values or raises `FormErrors` with a message per field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from dialer.core.errors import InvalidField
from dialer.core.phones import normalise
from dialer.intake.accept import valid_timezone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROUTING = {"sequential": "One after another", "simultaneous": "All at once", "round_robin": "Round robin"}
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
TEXTS = {"button": ("Button label", 40), "title": ("Panel title", 80), "thanks": ("Thank-you message", 200)}
COLOURS = {"button": "Button colour", "text": "Button text colour"}


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


def _time(value: str) -> bool:
    return bool(_HHMM.match(value))


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
            if not (_time(start) and _time(end)):
                raise InvalidField(field, f"'{span}' is not a time range: write it as 09:00-18:00 (24-hour).")
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


def parse_site(form: Form, settings: dict[str, Any]) -> dict[str, Any]:
    """The site's new column values and its new `settings` JSON (other keys in it are kept)."""
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
    routing = form.get("routing", "")
    if routing not in ROUTING:
        errors["routing"] = "Pick one of: " + ", ".join(ROUTING.values()) + "."
    consent_required = form.get("consent_required") == "on"
    consent_text = _text(form, "consent_text", errors, limit=1000,
                         required="Write the consent text visitors agree to." if consent_required else None)
    new_settings = dict(settings)
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
    new_settings["closed_dates"] = _dates(form.get("closed_dates", ""), errors)
    start, end = form.get("window_start", "").strip(), form.get("window_end", "").strip()
    if not (_time(start) and _time(end)):
        errors["calling_window"] = "Write both ends of the calling window as 24-hour times, e.g. 08:00 and 22:00."
    elif start >= end:
        errors["calling_window"] = "The calling window must end after it starts."
    new_settings["calling_window"] = [start, end]
    texts = {k: _text(form, f"text_{k}", errors, limit=limit) for k, (_, limit) in TEXTS.items()}
    new_settings["texts"] = {k: v for k, v in texts.items() if v}
    colours = {}
    for key, label in COLOURS.items():
        value = form.get(f"colour_{key}", "").strip()
        if value and not _COLOUR.match(value):
            errors[f"colour_{key}"] = f"{label}: write a colour as #RRGGBB, e.g. #0b6e4f."
        elif value:
            colours[key] = value.lower()
    new_settings["colors"] = colours
    origins = _origins(form.get("origins", ""), errors)
    if errors:
        raise FormErrors(errors)
    return {
        "name": name, "origins": origins, "country": country, "timezone": zone, "caller_id": caller_id,
        "routing": routing, "recording": form.get("recording") == "on", "consent_required": consent_required,
        "consent_text": consent_text or None, "settings": new_settings,
    }


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
