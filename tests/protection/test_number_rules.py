"""Which numbers a site will call: countries, number types and the owner's block list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType

from dialer.core import abuse_rules
from dialer.core.errors import InvalidField
from dialer.core.phones import parse_phone
from dialer.core.site_config import SiteConfig
from dialer.db.models import Site
from dialer.protection.number_rules import block, block_entry, blocked_entries, check_number, unblock
from dialer.sites.admin import add_site
from dialer.sites.config import from_row
from tests.conftest import make_world

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def site(country: str = "PL", any_country: bool = False, **abuse: Any) -> SiteConfig:
    return from_row(Site(id=1, key="s", name="S", timezone="Europe/Warsaw", country=country, any_country=any_country,
                         origins=[], settings={"abuse": abuse} if abuse else {}, consent_required=False))


def check(s: SiteConfig, phone: str) -> None:
    check_number(s, parse_phone(phone, s.country))


def refusal(s: SiteConfig, phone: str) -> InvalidField | None:
    try:
        check(s, phone)
    except InvalidField as exc:
        return exc
    return None


def example(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None and phonenumbers.number_type(number) == kind
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_by_default_only_the_sites_own_country_is_called() -> None:
    assert refusal(site(), "501 234 567") is None  # a Polish mobile, typed in national form
    foreign = refusal(site(), "+44 7400 123456")
    assert foreign is not None and foreign.field == "phone" and foreign.code == "country_not_allowed"
    assert "Poland" in foreign.message  # the country by its name, not its code


def test_the_owner_can_allow_more_countries_or_any() -> None:
    assert refusal(site(countries=["PL", "GB"]), "+44 7400 123456") is None
    assert refusal(site(countries=["PL", "GB"]), "+49 1512 3456789") is not None
    assert refusal(site(countries="any"), "+49 1512 3456789") is None
    assert refusal(site(any_country=True), "+49 1512 3456789") is None


COSTLY = [
    ("GB", PhoneNumberType.PREMIUM_RATE, "premium rate"),
    ("US", PhoneNumberType.PREMIUM_RATE, "premium rate"),
    ("AT", PhoneNumberType.SHARED_COST, "shared cost"),
    ("AE", PhoneNumberType.UAN, "uan"),
    ("DE", PhoneNumberType.VOICEMAIL, "voicemail"),
    ("GB", PhoneNumberType.PERSONAL_NUMBER, "personal number"),
    ("GB", PhoneNumberType.PAGER, "pager"),
    ("GB", PhoneNumberType.VOIP, "voip"),
]


@pytest.mark.parametrize(("region", "kind", "name"), COSTLY)
def test_costly_and_personless_number_types_are_refused(region: str, kind: int, name: str) -> None:
    exc = refusal(site(any_country=True), example(region, kind))
    assert exc is not None and exc.field == "phone" and exc.code == "number_type_not_allowed"
    assert "kind of number" in exc.message and name not in exc.message  # said for a visitor, no jargon


def test_ordinary_mobiles_landlines_and_toll_free_numbers_are_called() -> None:
    for region, kind in [("GB", PhoneNumberType.MOBILE), ("DE", PhoneNumberType.FIXED_LINE),
                         ("US", PhoneNumberType.TOLL_FREE), ("PL", PhoneNumberType.MOBILE)]:
        assert refusal(site(any_country=True), example(region, kind)) is None


def test_every_number_type_is_called_or_refused_by_choice() -> None:
    """Each type phonenumbers knows is on the called list or the refused one (a type it adds one day is
    not called until someone decides), and the default site calls exactly the first."""
    known = {name.lower() for name, value in vars(PhoneNumberType).items() if name.isupper() and isinstance(value, int)}
    assert known == set(abuse_rules.DEFAULT_ACCEPTED_TYPES) | set(abuse_rules.DEFAULT_REFUSED_TYPES)
    assert not set(abuse_rules.DEFAULT_ACCEPTED_TYPES) & set(abuse_rules.DEFAULT_REFUSED_TYPES)


def test_a_site_may_allow_voip_numbers() -> None:
    voip = example("GB", PhoneNumberType.VOIP)
    allowed = [t for t in abuse_rules.DEFAULT_REFUSED_TYPES if t != "voip"]
    assert refusal(site(any_country=True, refused_number_types=allowed), voip) is None


def test_the_refused_types_are_tunable_per_site() -> None:
    premium = example("GB", PhoneNumberType.PREMIUM_RATE)
    assert refusal(site(any_country=True, refused_number_types=["voicemail"]), premium) is None
    mobile = example("GB", PhoneNumberType.MOBILE)
    assert refusal(site(any_country=True, refused_number_types=["mobile"]), mobile) is not None


def test_blocked_numbers_and_prefixes_are_refused() -> None:
    s = site(blocked=["+48501234567", "+48600"])
    for phone in ("501 234 567", "+48 600 123 456"):
        exc = refusal(s, phone)
        assert exc is not None and exc.field == "phone" and exc.code == "number_blocked"
    assert refusal(s, "502 234 567") is None


def test_block_list_entries_are_read_as_the_owner_types_them() -> None:
    assert block_entry("501 234 567", "PL") == "+48501234567"
    assert block_entry("+44 870", "PL") == "+44870"
    assert block_entry("+1 (900)", "US") == "+1900"
    for bad in ("hello", "870", "+", "+12345678901234567"):
        with pytest.raises(InvalidField) as exc:
            block_entry(bad, "PL")
        assert exc.value.field == "number"


def test_settings_the_owner_got_wrong_fall_back_to_the_defaults() -> None:
    rules = site(form_token="no", min_fill_seconds=-3, daily_calls="many",
                 rate_limits={"ip": {"limit": "x"}, "site": None}, over_cap="shout").abuse
    assert rules.form_token is True and rules.min_fill_seconds == abuse_rules.DEFAULT_MIN_FILL_SECONDS
    assert rules.daily_calls == abuse_rules.DEFAULT_DAILY_CALLS and rules.over_cap == "message"
    assert rules.rate_limits["ip"] == abuse_rules.DEFAULT_RATE_LIMITS["ip"] and rules.rate_limits["site"] is None
    assert site(daily_calls=None, daily_spend=None).abuse.daily_spend is None


async def test_the_owner_edits_the_block_list_and_it_is_kept(database_url: str) -> None:
    world = await make_world(database_url, site_settings={})
    try:
        async with world.runtime.sessions() as session, session.begin():
            shop = await session.merge(world.site)
            assert await block(session, shop, "501 234 567") == "+48501234567"
            assert await block(session, shop, "+44 870") == "+44870"
            await block(session, shop, "+44870")  # twice is once
        async with world.runtime.sessions() as session, session.begin():
            shop = await session.get(Site, world.site.id)
            assert shop is not None and blocked_entries(shop) == ["+48501234567", "+44870"]
            with pytest.raises(InvalidField):
                check(from_row(shop), "501234567")
            await unblock(session, shop, "+48 501 234 567")
            with pytest.raises(InvalidField) as exc:
                await unblock(session, shop, "+48 501 234 567")
            assert exc.value.code == "not_found"
        async with world.runtime.sessions() as session:
            shop = await session.get(Site, world.site.id)
            assert shop is not None and blocked_entries(shop) == ["+44870"]
            check(from_row(shop), "501234567")
    finally:
        await world.runtime.close()


async def test_a_new_site_has_protection_on(database_url: str) -> None:
    world = await make_world(database_url)
    try:
        async with world.runtime.sessions() as session, session.begin():
            fresh = await add_site(session, name="New", key="new", country="GB", now=NOW)
        rules = from_row(fresh).abuse
        assert rules.countries == ("GB",) and rules.form_token and rules.one_active_per_number
        assert rules.daily_calls and rules.daily_spend and all(rules.rate_limits.values())
    finally:
        await world.runtime.close()
