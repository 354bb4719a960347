"""What the widget is told about how it looks and behaves on a site: texts in the visitor's language,
colours, corner, triggers and excluded pages. The site's own choices are read once, with the rest of its
config (`dialer/core/widget_look.py` lists the settings keys); here they meet the widget's wording in
each language it speaks (`widget_texts.py`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers

from dialer.core.site_config import SiteConfig
from dialer.core.widget_look import contrast, readable_on
from server.widget_texts import DEFAULT_LANGUAGE, LANGUAGES, RTL, TEXTS

__all__ = ["appearance", "colors", "contrast", "language", "phone_example", "readable_on", "texts", "triggers"]

_COUNTRY_LANGUAGE = {"PL": "pl", "DE": "de", "AT": "de", "CH": "de", "LI": "de", "RU": "ru", "BY": "ru", "KZ": "ru"}


def language(site: SiteConfig, requested: str | None) -> str:
    """The site's fixed language, else the visitor's browser language if the widget speaks it, else
    the language of the site's country, else English."""
    fixed = site.widget.language
    if fixed is not None and fixed in LANGUAGES:
        return fixed
    wanted = re.split(r"[-_]", (requested or "").strip().lower(), maxsplit=1)[0]
    if wanted in LANGUAGES:
        return wanted
    return _COUNTRY_LANGUAGE.get(site.country, DEFAULT_LANGUAGE)


def texts(site: SiteConfig, lang: str) -> dict[str, str]:
    """The language's texts, then the site's wording for every language, then its wording for this one."""
    merged = dict(TEXTS[lang])
    for layer in (site.widget.texts, site.widget.texts_by_language.get(lang, {})):
        merged.update({k: v for k, v in layer.items() if k in merged})
    if site.consent_text:
        merged["consent"] = site.consent_text
    return merged


def colors(site: SiteConfig) -> dict[str, str]:
    """The site's colours (text colours that would fail AA contrast already replaced)."""
    return dict(site.widget.colors)


def triggers(site: SiteConfig) -> dict[str, Any]:
    found = site.widget.triggers
    return {"after_seconds": found.after_seconds, "exit_intent": found.exit_intent, "cap_hours": found.cap_hours}


@lru_cache(maxsize=256)
def phone_example(country: str) -> str | None:
    """A mobile number of the site's country in national form, as a hint of what to type."""
    number = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def appearance(site: SiteConfig, requested_language: str | None) -> dict[str, Any]:
    lang = language(site, requested_language)
    return {
        "language": lang,
        "dir": "rtl" if lang in RTL else "ltr",
        "texts": texts(site, lang),
        "colors": colors(site),
        "position": site.widget.position,
        "triggers": triggers(site),
        "exclude": list(site.widget.exclude),
        "hide_on": list(site.widget.hide_on),
        "phone_example": phone_example(site.country),
    }
