"""How the widget looks and behaves on a site: texts in the visitor's language, colours, corner,
triggers and excluded pages. Read from `sites.settings` (owner-edited JSON), with polite defaults:

    {"language": "auto" | "en" | "pl" | "ru" | "de",
     "texts": {"button": "…"} or {"pl": {"button": "…"}, …},
     "colors": {"accent": "#0b6e4f", "accent_text": "#ffffff", "panel": "#ffffff", "text": "#1a1a1a"},
     "position": "bottom-right" | "bottom-left",
     "triggers": {"after_seconds": 30, "exit_intent": true, "cap_hours": 168},
     "exclude": ["/checkout*"],   # pages where the widget never opens by itself
     "hide_on": ["/admin/*"]}     # pages where it is not shown at all

Anything malformed falls back to the default rather than reaching a visitor's browser.
"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from dialer.db.models import Site
from server.widget_texts import DEFAULT_LANGUAGE, LANGUAGES, RTL, TEXTS

DEFAULT_COLORS = {"accent": "#0b6e4f", "panel": "#ffffff", "text": "#1a1a1a"}
POSITIONS = ("bottom-right", "bottom-left")
DEFAULT_CAP_HOURS = 7 * 24
AA_TEXT = 4.5  # WCAG AA contrast for normal text
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
_COUNTRY_LANGUAGE = {"PL": "pl", "DE": "de", "AT": "de", "CH": "de", "LI": "de", "RU": "ru", "BY": "ru", "KZ": "ru"}
MAX_PATTERNS = 50


def language(site: Site, requested: str | None) -> str:
    """The site's fixed language, else the visitor's browser language if the widget speaks it, else
    the language of the site's country, else English."""
    fixed = (site.settings or {}).get("language")
    if isinstance(fixed, str) and fixed in LANGUAGES:
        return fixed
    wanted = re.split(r"[-_]", (requested or "").strip().lower(), maxsplit=1)[0]
    if wanted in LANGUAGES:
        return wanted
    return _COUNTRY_LANGUAGE.get(site.country, DEFAULT_LANGUAGE)


def texts(site: Site, lang: str) -> dict[str, str]:
    """The language's texts, then the site's wording for every language, then its wording for this one."""
    own = (site.settings or {}).get("texts")
    merged = dict(TEXTS[lang])
    if isinstance(own, dict):
        for layer in (own, own.get(lang)):
            if isinstance(layer, dict):
                merged.update({k: v for k, v in layer.items() if k in merged and isinstance(v, str) and v})
    if site.consent_text:
        merged["consent"] = site.consent_text
    return merged


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def _luminance(color: str) -> float:
    digits = color[1:]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two `#rrggbb` colours (1 to 21)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def readable_on(background: str) -> str:
    return "#ffffff" if contrast(background, "#ffffff") >= contrast(background, "#111111") else "#111111"


def colors(site: Site) -> dict[str, str]:
    """The site's colours, with text colours replaced where they would fail AA contrast."""
    own = (site.settings or {}).get("colors")
    own = own if isinstance(own, dict) else {}
    chosen = {k: own[k] if isinstance(own.get(k), str) and _HEX.fullmatch(own[k]) else v
              for k, v in DEFAULT_COLORS.items()}
    accent_text = own.get("accent_text")
    if not (isinstance(accent_text, str) and _HEX.fullmatch(accent_text)
            and contrast(chosen["accent"], accent_text) >= AA_TEXT):
        accent_text = readable_on(chosen["accent"])
    if contrast(chosen["panel"], chosen["text"]) < AA_TEXT:
        chosen["text"] = readable_on(chosen["panel"])
    return {**chosen, "accent_text": accent_text}


def _pattern(glob: str) -> str:
    """A path glob (`*` matches anything) as a regular expression the browser's RegExp reads alike."""
    return "^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$"


def _patterns(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        return []
    return [_pattern(p.strip()) for p in raw[:MAX_PATTERNS] if isinstance(p, str) and p.strip()]


def _int(raw: Any, low: int, high: int) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return max(low, min(int(raw), high))


def triggers(site: Site) -> dict[str, Any]:
    """Opening by itself is off unless the site asks; then at most once per `cap_hours`."""
    own = (site.settings or {}).get("triggers")
    own = own if isinstance(own, dict) else {}
    cap = _int(own.get("cap_hours"), 1, 24 * 365)
    return {
        "after_seconds": _int(own.get("after_seconds"), 1, 3600),
        "exit_intent": own.get("exit_intent") is True,
        "cap_hours": DEFAULT_CAP_HOURS if cap is None else cap,
    }


def phone_example(country: str) -> str | None:
    """A mobile number of the site's country in national form, as a hint of what to type."""
    number = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def appearance(site: Site, requested_language: str | None) -> dict[str, Any]:
    lang = language(site, requested_language)
    settings = site.settings or {}
    position = settings.get("position")
    return {
        "language": lang,
        "dir": "rtl" if lang in RTL else "ltr",
        "texts": texts(site, lang),
        "colors": colors(site),
        "position": position if position in POSITIONS else POSITIONS[0],
        "triggers": triggers(site),
        "exclude": _patterns(settings.get("exclude")),
        "hide_on": _patterns(settings.get("hide_on")),
        "phone_example": phone_example(site.country),
    }
