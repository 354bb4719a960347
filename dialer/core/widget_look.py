"""How the widget looks and behaves on a site, read from `sites.settings` (owner-edited JSON):

    {"language": "auto" | "en" | "pl" | "ru" | "de",
     "texts": {"button": "…"} or {"pl": {"button": "…"}, …},
     "colors": {"accent": "#0b6e4f", "accent_text": "#ffffff", "panel": "#ffffff", "text": "#1a1a1a"},
     "position": "bottom-right" | "bottom-left",
     "triggers": {"after_seconds": 30, "exit_intent": true, "cap_hours": 168},
     "exclude": ["/checkout*"],   # pages where the widget never opens by itself
     "hide_on": ["/admin/*"]}     # pages where it is not shown at all

Colours are final here: a text colour that would fail WCAG AA contrast on its background is replaced.
Which text keys and languages exist is the web layer's business (`server/widget_texts.py`): every string
is kept here, and the web layer uses those it knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dialer.core.settings_json import Problems, read_bool, read_number, read_object

DEFAULT_COLORS = {"accent": "#0b6e4f", "panel": "#ffffff", "text": "#1a1a1a"}
POSITIONS = ("bottom-right", "bottom-left")
DEFAULT_CAP_HOURS = 7 * 24
AA_TEXT = 4.5  # WCAG AA contrast for normal text
MAX_PATTERNS = 50
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")
# Keys the dashboard wrote before it used the widget's own ones.
_OLD_TEXT_KEYS = {"thanks": "received"}
_OLD_COLOR_KEYS = {"button": "accent"}


@dataclass(frozen=True, eq=False)
class Triggers:
    """Opening by itself is off unless the site asks; then at most once per `cap_hours`."""

    after_seconds: int | None = None
    exit_intent: bool = False
    cap_hours: int = DEFAULT_CAP_HOURS


@dataclass(frozen=True, eq=False)
class WidgetLook:
    language: str | None  # the site's fixed language; None: the visitor's ("auto")
    texts: Mapping[str, str]  # the site's wording, for every language
    texts_by_language: Mapping[str, Mapping[str, str]]  # and for one language
    colors: Mapping[str, str]  # accent, accent_text, panel, text
    own_colors: Mapping[str, str]  # those of them the site chose (before defaults and contrast)
    position: str
    triggers: Triggers
    exclude: tuple[str, ...]  # regular expressions over the page's path
    hide_on: tuple[str, ...]


def read_widget(settings: Mapping[str, Any], problems: Problems) -> WidgetLook:
    language = settings.get("language")
    if language is not None and not isinstance(language, str):
        problems.note("language", language, "a language code", "the visitor's language")
    position = settings.get("position")
    if position is not None and position not in POSITIONS:
        problems.note("position", position, "bottom-right or bottom-left", POSITIONS[0])
    texts, by_language = _texts(settings.get("texts"), problems)
    own_colors = _own_colors(settings.get("colors"), problems)
    return WidgetLook(
        language=language if isinstance(language, str) and language != "auto" else None,
        texts=texts,
        texts_by_language=by_language,
        colors=_colors(own_colors),
        own_colors=own_colors,
        position=position if position in POSITIONS else POSITIONS[0],
        triggers=_triggers(settings.get("triggers"), problems),
        exclude=_patterns(settings.get("exclude"), "exclude", problems),
        hide_on=_patterns(settings.get("hide_on"), "hide_on", problems),
    )


def _strings(layer: Mapping[str, Any], where: str, problems: Problems) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in layer.items():
        if isinstance(value, str):
            if value:
                found[key] = value
        elif not isinstance(value, dict):  # an object is a language's own wording
            problems.note(f"{where}.{key}", value, "a text", "the default wording")
    for old, new in _OLD_TEXT_KEYS.items():
        if old in found:
            found.setdefault(new, found.pop(old))  # the current key wins over the old one
    return found


def _texts(raw: Any, problems: Problems) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    own = read_object(raw, "texts", problems)
    by_language = {
        lang: _strings(layer, f"texts.{lang}", problems) for lang, layer in own.items() if isinstance(layer, dict)
    }
    return _strings(own, "texts", problems), by_language


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


def _own_colors(raw: Any, problems: Problems) -> dict[str, str]:
    own = dict(read_object(raw, "colors", problems))
    for old, new in _OLD_COLOR_KEYS.items():
        if old in own:
            value = own.pop(old)
            own.setdefault(new, value)  # the current key wins over the old one
    valid: dict[str, str] = {}
    for key in (*DEFAULT_COLORS, "accent_text"):
        value = own.get(key)
        if isinstance(value, str) and _HEX.fullmatch(value):
            valid[key] = value
        elif value is not None:
            problems.note(f"colors.{key}", value, "a colour such as #0b6e4f", "the default")
    return valid


def _colors(own: Mapping[str, str]) -> dict[str, str]:
    """The site's colours, with text colours replaced where they would fail AA contrast."""
    chosen = {key: own.get(key, default) for key, default in DEFAULT_COLORS.items()}
    accent_text = own.get("accent_text")
    if accent_text is None or contrast(chosen["accent"], accent_text) < AA_TEXT:
        accent_text = readable_on(chosen["accent"])
    if contrast(chosen["panel"], chosen["text"]) < AA_TEXT:
        chosen["text"] = readable_on(chosen["panel"])
    return {**chosen, "accent_text": accent_text}


def _triggers(raw: Any, problems: Problems) -> Triggers:
    own = read_object(raw, "triggers", problems)
    cap = read_number(own.get("cap_hours"), "triggers.cap_hours", 1, 24 * 365, problems)
    return Triggers(
        after_seconds=read_number(own.get("after_seconds"), "triggers.after_seconds", 1, 3600, problems),
        exit_intent=read_bool(own.get("exit_intent"), "triggers.exit_intent", False, problems),
        cap_hours=DEFAULT_CAP_HOURS if cap is None else cap,
    )


def _pattern(glob: str) -> str:
    """A path glob (`*` matches anything) as a regular expression the browser's RegExp reads alike."""
    return "^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$"


def _patterns(raw: Any, where: str, problems: Problems) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.note(where, raw, "a list of paths", "none")
        return ()
    if len(raw) > MAX_PATTERNS:
        problems.add(f"{where}: more than {MAX_PATTERNS} paths; the first {MAX_PATTERNS} are used")
    return tuple(_pattern(p.strip()) for p in raw[:MAX_PATTERNS] if isinstance(p, str) and p.strip())
