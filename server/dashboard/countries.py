"""Country names for the settings form: the allowed countries of a site are shown and typed as names
("Poland (PL), Germany (DE)"), not bare codes. The names come from phonenumbers' own data (the country
of each region's example number), so every region a number can belong to has one."""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
from phonenumbers import geocoder

_CODE_IN_BRACKETS = re.compile(r"\(([A-Za-z]{2})\)\s*$")


@cache
def names() -> dict[str, str]:
    """{region code: English name}, sorted by name."""
    found = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        example = phonenumbers.example_number(region)
        found[region] = (geocoder.country_name_for_number(example, "en") if example else "") or region
    return dict(sorted(found.items(), key=lambda kv: kv[1]))


def name(code: str) -> str:
    return names().get(code, code)


def shown(codes: list[str] | tuple[str, ...] | None) -> str:
    """The form's text for a list of codes (None: any country)."""
    if codes is None:
        return "any"
    return ", ".join(f"{name(c)} ({c})" for c in codes)


def read(text: str) -> list[str] | None:
    """Codes from the form's text: "any", or entries split by commas or new lines, each a name ("Poland"),
    a code ("PL"), both ("Poland (PL)"), or codes split by spaces ("PL DE"). Raises ValueError naming
    the first entry that is none of these."""
    if text.strip().lower() in ("any", "any country", "all"):
        return None
    by_name = {n.lower(): c for c, n in names().items()}
    codes: list[str] = []
    for entry in (e.strip() for e in re.split(r"[,\n;]+", text)):
        if not entry:
            continue
        bracketed = _CODE_IN_BRACKETS.search(entry)
        if bracketed:
            parts = [bracketed.group(1)]
        elif entry.lower() in by_name:
            parts = [by_name[entry.lower()]]
        else:
            parts = entry.split()
        for part in parts:
            code = by_name.get(part.lower(), part.upper())
            if code not in names():
                raise ValueError(part)
            if code not in codes:
                codes.append(code)
    return codes
