"""Accepting a visitor's request: validate every field, then write the lead and its first timeline line.

Nothing is written unless every field is right, so a refused request leaves no trace in the database.
The public API calls the steps one by one, with its screening between them (server/api.py); trusted
callers (the command line, tests, benchmarks) call `accept`, which runs them all without screening.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import timezone as phone_timezones
from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core import slots, source
from dialer.core.errors import InvalidField
from dialer.core.hours import zone as zone_info
from dialer.core.phones import e164, parse_phone
from dialer.core.site_config import SiteConfig
from dialer.db.models import CallLeg, Lead, Manager, new_id
from dialer.intake import new_lead
from dialer.intake.schedule import When, schedule
from dialer.intake.schedule import booked_slots as booked_slots  # where it was defined before
from dialer.sites.config import from_row
from dialer.sites.lookup import site_by_key

UTM_KEYS = ("source", "medium", "campaign", "term", "content")
LIMITS = {"name": 200, "message": 2000, "visitor_id": 64, "page_url": 2048, "referrer": 2048, "utm": 200}


@dataclass
class CallbackRequest:
    site: str
    phone: str
    timezone: str | None = None
    scheduled_for: datetime | None = None
    message: str | None = None
    name: str | None = None
    visitor_id: str | None = None
    page_url: str | None = None
    referrer: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    consent: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # visit facts from the widget (visits, first seen…)


class Checked(NamedTuple):
    """What `validate` found: the number in E.164, the visitor's time zone and where that came from."""

    phone: str
    zone: str
    zone_source: str


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_timezone(name: str) -> bool:
    return name in _zones()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(lead: Lead, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(lead.token_hash, hash_token(token or ""))


def _check_length(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise InvalidField(name, f"This is too long: at most {limit} characters.", "too_long")


def number_zones(number: phonenumbers.PhoneNumber) -> list[str]:
    """The time zones a number may be in, by its prefix (phonenumbers' data), known names only."""
    return [z for z in phone_timezones.time_zones_for_number(number) if valid_timezone(z)]


def earliest_closing(zones: list[str], now: datetime) -> str:
    """Of several zones, the one whose evening comes first (the largest offset from UTC now)."""
    return max(zones, key=lambda z: (now.astimezone(zone_info(z)).utcoffset() or timedelta(0), z))


def visitor_timezone(
    given: str | None, number: phonenumbers.PhoneNumber, site: SiteConfig, now: datetime
) -> tuple[str, str]:
    """The visitor's time zone and where it came from: the browser, when plausible for the number."""
    if given and not valid_timezone(given):
        raise InvalidField("timezone", f"'{given[:64]}' is not a known time zone name.", "invalid_timezone")
    zones = number_zones(number)
    if given and (not zones or given in zones or _same_offsets(given, zones, now)):
        return given, "browser"
    if zones:
        source = "phone number" if not given else f"phone number (the browser's {given} is unlikely for it)"
        return earliest_closing(zones, now), source
    return site.timezone, "site"


def _same_offsets(given: str, zones: list[str], now: datetime) -> bool:
    # "Europe/Kiev" and "Europe/Kyiv", "UTC" and "Etc/UTC": an alias with the same clock is plausible.
    offset = now.astimezone(zone_info(given)).utcoffset()
    return len(zones) == 1 and now.astimezone(zone_info(zones[0])).utcoffset() == offset


def validate(
    site: SiteConfig, req: CallbackRequest, now: datetime, number: phonenumbers.PhoneNumber | None = None
) -> Checked:
    """Check every field. `number` is the request's phone already read (`phones.parse_phone`), if it was."""
    for name in ("name", "message", "visitor_id", "page_url", "referrer"):
        _check_length(name, getattr(req, name), LIMITS[name])
    for key, value in req.utm.items():
        if key not in UTM_KEYS:
            raise InvalidField(f"utm.{key}", f"Unknown UTM tag '{key[:20]}'.", "unknown_field")
        _check_length(f"utm.{key}", value, LIMITS["utm"])
    if number is None:
        number = parse_phone(req.phone, site.country)
    if site.consent_required and not req.consent:
        raise InvalidField("consent", "Please agree to be called before sending the request.", "consent_required")
    if req.scheduled_for is not None:
        slots.picked_time(req.scheduled_for)
        if req.scheduled_for < now:
            raise InvalidField("scheduled_for", "This time has already passed. Please pick a later one.", "in_past")
    zone, zone_source = visitor_timezone(req.timezone, number, site, now)
    return Checked(e164(number), zone, zone_source)


def is_message(req: CallbackRequest) -> bool:
    """A request with a message is kept for a human: nobody is dialed."""
    return bool(req.message and req.message.strip())


async def accept(
    session: AsyncSession,
    req: CallbackRequest,
    now: datetime,
    *,
    site: SiteConfig | None = None,
    managers: list[Manager] | None = None,
) -> tuple[Lead, str]:
    """Validate, schedule and write a new lead, without screening (for trusted callers); returns it with
    the secret token that lets the visitor follow it."""
    site = site or from_row(await site_by_key(session, req.site))
    checked = validate(site, req, now)
    when = await schedule(session, site, req.scheduled_for, checked.zone, now, is_message=is_message(req),
                          managers=managers)
    return await write(session, site, req, checked, when, now)


async def write(
    session: AsyncSession,
    site: SiteConfig,
    req: CallbackRequest,
    checked: Checked,
    when: When,
    now: datetime,
    *,
    one_per_number: bool = False,
) -> tuple[Lead, str]:
    """Write the lead and the first line of its timeline; returns it with the visitor's secret token.

    `one_per_number`: the lead counts for the database's "one active call request per number" index, so
    the insert raises IntegrityError when another active one for the number is there (the public API
    passes it when the site has the rule; trusted callers write freely)."""
    token = secrets.token_urlsafe(24)
    returning, last_manager = await _history(session, site.id, req.visitor_id, checked.phone)
    message = is_message(req)
    lead = Lead(
        id=new_id(),  # known before the insert, so the lead and its first timeline line go in together
        site_id=site.id,
        kind="message" if message else "call",
        status=when.status,
        version=1,
        token_hash=hash_token(token),
        phone=checked.phone,
        name=(req.name or "").strip() or None,
        message=req.message if message else None,
        timezone=checked.zone,
        scheduled_for=when.scheduled_for,
        wake_at=when.wake_at,
        attempt=1,
        preferred_manager_id=last_manager,
        consent=req.consent,
        one_per_number=one_per_number,
        visitor_id=req.visitor_id,
        page_url=req.page_url,
        referrer=req.referrer,
        utm={k: v for k, v in req.utm.items() if v},
        source={
            "label": source.label(req.utm, req.referrer, req.page_url),
            "returning": returning,
            "timezone_source": checked.zone_source,
            **req.extra,
            "spoken": source.spoken(req.utm, req.referrer, req.page_url),  # what the whisper may say
        },
        created_at=now,
        updated_at=now,
    )
    zone = checked.zone
    detail = f"request received ({lead.kind}); visitor's time zone {zone} from the {checked.zone_source}"
    if when.scheduled_for is not None:
        why = "picked by the visitor" if req.scheduled_for else "outside calling hours"
        local = when.scheduled_for.astimezone(zone_info(zone))
        detail += f"; to be called at {local:%Y-%m-%d %H:%M} their time ({why})"
    if last_manager is not None:
        detail += "; a returning visitor, offered first to the manager who spoke with them last"
    await new_lead.write(session, lead, at=now, kind="status", status=when.status, detail=detail)
    return lead, token


def _history_query(by_visitor: bool) -> Select[Any]:
    """Whether the visitor asked before, and the manager who last talked with them: one round trip (a
    first-time visitor's number matches no lead, so the second part costs nothing). Built once."""
    same = Lead.phone == bindparam("phone")
    if by_visitor:
        same = same | (Lead.visitor_id == bindparam("visitor_id"))
    site = Lead.site_id == bindparam("site_id")
    earlier = select(Lead.id).where(site, same).limit(1)
    talked = (
        select(CallLeg.manager_id)
        .join(Lead, Lead.id == CallLeg.lead_id)
        .where(site, same, CallLeg.accepted.is_(True), CallLeg.manager_id.is_not(None))
        .where(CallLeg.answered_at.is_not(None))
        .order_by(CallLeg.created_at.desc())
        .limit(1)
    )
    return select(earlier.exists(), talked.scalar_subquery())


_HISTORY = {False: _history_query(False), True: _history_query(True)}


async def _history(
    session: AsyncSession, site_id: int, visitor_id: str | None, phone: str
) -> tuple[bool, int | None]:
    """Whether the visitor asked before, and the manager who last talked with them, if any."""
    params = {"site_id": site_id, "phone": phone, "visitor_id": visitor_id}
    row = (await session.execute(_HISTORY[bool(visitor_id)], params)).one()
    return bool(row[0]), row[1]
