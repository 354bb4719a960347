"""Which numbers a site will call: its countries, no costly or personless number types, and its block list.

Toll fraud works by making a server dial numbers that pay the caller's victim (premium rate, shared cost);
the block list lets an owner stop a number being used to harass someone.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.countries import country_list
from dialer.core.errors import InvalidField
from dialer.core.phones import e164
from dialer.db.models import Site
from dialer.sites.config import SiteConfig, from_row

MAX_BLOCKED = 1000
_TYPE_NAMES = {
    value: name.lower() for name, value in vars(PhoneNumberType).items() if name.isupper() and isinstance(value, int)
}


def allowed_countries(site: SiteConfig) -> list[str] | None:
    """Regions whose numbers the site accepts; None means any."""
    countries = site.abuse.countries
    return None if countries is None else list(countries)


def type_name(number: phonenumbers.PhoneNumber) -> str:
    return _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")


def check_number(site: SiteConfig, number: phonenumbers.PhoneNumber) -> None:
    rules = site.abuse
    region = phonenumbers.region_code_for_number(number)
    if rules.countries is not None and region not in rules.countries:
        raise InvalidField("phone", f"Sorry, we can only call numbers from {country_list(rules.countries)}.",
                           "country_not_allowed", regions=rules.countries)
    kind = type_name(number)
    if kind in rules.refused_types:
        raise InvalidField(
            "phone",
            "We cannot call this kind of number. Please give a mobile or landline number.",
            "number_type_not_allowed",
        )
    if is_blocked(rules.blocked, e164(number)):
        raise InvalidField("phone", "We cannot call this number.", "number_blocked")


def is_blocked(blocked: tuple[str, ...], number: str) -> bool:
    return any(number.startswith(entry) for entry in blocked)


def block_entry(raw: str, country: str) -> str:
    """A block list entry as the owner typed it: a whole number (any form) or an international prefix."""
    text = "".join(ch for ch in raw.strip() if ch not in " -().")
    try:
        number = phonenumbers.parse(text, country.upper())
        if phonenumbers.is_valid_number(number):
            return e164(number)
    except phonenumbers.NumberParseException:
        pass
    if text.startswith("+") and text[1:].isdigit() and 1 <= len(text) - 1 <= 15:
        return text
    raise InvalidField(
        "number", "Give a whole phone number, or a prefix with its country code such as +44870.", "invalid_phone"
    )


def blocked_entries(site: Site) -> list[str]:
    """The block list as stored in the site's row (the one being edited)."""
    return list(from_row(site).abuse.blocked)


async def block(session: AsyncSession, site: Site, raw: str) -> str:
    entry = block_entry(raw, site.country)
    entries = blocked_entries(site)
    if entry not in entries:
        if len(entries) >= MAX_BLOCKED:
            raise InvalidField("number", f"The block list holds at most {MAX_BLOCKED} entries.", "too_many")
        _store(site, [*entries, entry])
    await session.flush()
    return entry


async def unblock(session: AsyncSession, site: Site, raw: str) -> str:
    entry = block_entry(raw, site.country)
    entries = blocked_entries(site)
    if entry not in entries:
        raise InvalidField("number", f"{entry} is not on the block list.", "not_found")
    _store(site, [e for e in entries if e != entry])
    await session.flush()
    return entry


def _store(site: Site, entries: list[str]) -> None:
    # A new dict, so SQLAlchemy sees the JSON column change.
    settings = dict(site.settings or {})
    abuse = dict(settings.get("abuse") or {})
    abuse["blocked"] = entries
    settings["abuse"] = abuse
    site.settings = settings
