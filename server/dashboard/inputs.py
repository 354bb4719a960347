"""What every dashboard request's input must be before a handler sees it: text without NUL or other
control characters a database refuses (PostgreSQL cannot store NUL), ids within the database's integer
range, pages and dates a calendar has. Anything else is a 4xx naming the field, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from starlette.exceptions import HTTPException

MAX_ID = 2**31 - 1  # PostgreSQL's INTEGER
MAX_TEXT = 20_000  # characters in one field
MAX_PAGE = 100_000
EARLIEST, LATEST = date(2000, 1, 1), date(9998, 12, 31)
_BAD = re.compile(r"[\x00\ud800-\udfff]")


def refuse_bad_text(items: Iterable[tuple[str, object]]) -> None:
    for name, value in items:
        if isinstance(value, int) and not 0 <= value <= MAX_ID:
            raise HTTPException(404, "Not found.")
        if isinstance(value, str):
            if _BAD.search(value) or _BAD.search(name):
                raise HTTPException(400, f"'{_shown(name)}' contains a character that is not allowed.")
            if len(value) > MAX_TEXT:
                raise HTTPException(400, f"'{_shown(name)}' is too long (at most {MAX_TEXT} characters).")


def _shown(name: str) -> str:
    return _BAD.sub("", name)[:40]


def as_id(raw: str) -> int | None:
    """`raw` as a database id, or None when it cannot be one ("²" is a digit to Python, not to int())."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        return None
    return int(raw)


def page_number(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= MAX_PAGE:
        raise HTTPException(400, f"'page' must be a whole number from 1 to {MAX_PAGE}.")
    return int(raw)


def an_id(raw: str, what: str) -> int:
    """A form's id field: a whole number the database can hold, else 422 naming the field."""
    found = as_id(raw)
    if found is None:
        raise HTTPException(422, f"'{what}' must name one of the choices offered.")
    return found


def a_day(raw: str | None, name: str) -> date | None:
    """A date filter (YYYY-MM-DD); empty is none. A date outside 2000-9998 or not a date is a 400."""
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise HTTPException(400, f"'{name}' must be a date such as 2026-03-31.") from None
    if not EARLIEST <= day <= LATEST:
        raise HTTPException(400, f"'{name}' must be a date between {EARLIEST} and {LATEST}.")
    return day
