"""Phone numbers as visitors type them, read with `phonenumbers` and kept in E.164."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from dialer.core.errors import InvalidField

MAX_INPUT = 40


def parse_phone(raw: str, default_country: str, *, field: str = "phone") -> phonenumbers.PhoneNumber:
    text = raw.strip()
    if not text:
        raise InvalidField(field, "Please enter your phone number.", "required")
    if len(text) > MAX_INPUT:
        raise InvalidField(field, "That is too long for a phone number.", "too_long")
    try:
        number = phonenumbers.parse(text, default_country.upper())
    except NumberParseException:
        raise InvalidField(
            field, "This does not look like a phone number. Check the digits.", "invalid_phone"
        ) from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidField(
            field,
            "This phone number is not valid. Check the digits, or add the country code (e.g. +44).",
            "invalid_phone",
        )
    return number


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def normalise(raw: str, default_country: str, *, field: str = "phone") -> str:
    return e164(parse_phone(raw, default_country, field=field))
