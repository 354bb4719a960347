"""Country names for people, from a region code ("US" → "the United States", "Vereinigte Staaten von
Amerika"): what visitors and owners read instead of codes. The names are phonenumbers' own data."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

# English names that take "the" inside a sentence ("numbers from the United States").
_THE = frozenset({"US", "GB", "NL", "PH", "AE", "CZ", "DO", "BS", "GM", "KY", "CF", "KM", "MV", "MH", "SB", "VA",
                  "CD", "CG", "VG", "VI", "TC", "FO", "FK", "MP", "IM"})
_AND = {"en": "and", "pl": "i", "ru": "и", "de": "und"}


@lru_cache(maxsize=1024)
def country_name(region: str, lang: str = "en") -> str:
    """The country's name in `lang` (English when phonenumbers has none in it); the code itself for a
    region it does not know."""
    example = phonenumbers.example_number(region)
    name = ""
    if example is not None:
        name = geocoder.country_name_for_number(example, lang) or geocoder.country_name_for_number(example, "en")
    if not name:
        return region
    return f"the {name}" if lang == "en" and region in _THE else name


def country_list(regions: Iterable[str], lang: str = "en") -> str:
    """"Poland, Germany and the United States", in `lang`."""
    names = [country_name(r, lang) for r in regions]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {_AND.get(lang, _AND['en'])} {names[-1]}"
