"""Reading the owner-edited JSON of `sites.settings`: each reader checks one value's type and range and,
when it cannot use the value, notes the problem (`Problems`) and returns the default.

A missing key or `null` means "not set" and is no problem. The notes name the key and, for a scalar,
the value, so an owner can find it; lists and objects are named by their kind only (a block list holds
phone numbers, which are never logged).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_SHOWN = 24  # characters of a string value shown in a note


def shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return repr(value[:_SHOWN] + ("…" if len(value) > _SHOWN else ""))
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


class Problems:
    """What could not be read from one site's settings, one line each."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, text: str) -> None:
        self.found.append(text)

    def note(self, where: str, value: Any, expected: str, default: str) -> None:
        self.add(f"{where}: {shown(value)} is not {expected}; using {default}")


def read_bool(raw: Any, where: str, default: bool, problems: Problems) -> bool:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    problems.note(where, raw, "true or false", "true" if default else "false")
    return default


def read_count(raw: Any, where: str, default: int, problems: Problems) -> int:
    """A whole number from 0 up (a whole float such as 3.0 counts as one)."""
    if raw is None:
        return default
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    problems.note(where, raw, "a whole number from 0 up", str(default))
    return default


def read_number(raw: Any, where: str, low: int, high: int, problems: Problems) -> int | None:
    """A number clamped to [low, high]; None when unset or unreadable."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != raw:  # NaN
        problems.note(where, raw, "a number", "none")
        return None
    return max(low, min(int(raw), high))


def read_strings(
    raw: Any, where: str, default: tuple[str, ...], problems: Problems, *, show: bool = True
) -> tuple[str, ...]:
    """A list of strings; entries that are not strings are left out (and noted)."""
    if raw is None:
        return default
    if not isinstance(raw, list):
        what = shown(raw) if show or not isinstance(raw, str) else "a string"
        problems.add(f"{where}: {what} is not a list of strings; using the default")
        return default
    kept = tuple(v for v in raw if isinstance(v, str))
    if len(kept) < len(raw):
        problems.add(f"{where}: {len(raw) - len(kept)} entries are not strings; left out")
    return kept


def read_object(raw: Any, where: str, problems: Problems) -> dict[str, Any]:
    """A JSON object; anything else is read as an empty one."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    problems.note(where, raw, "an object", "the defaults")
    return {}
