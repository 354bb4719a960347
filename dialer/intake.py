"""Accepting a visitor's request: validate every field, then write the lead and its first timeline line.

Nothing is written unless every field is right, so a refused request leaves no trace in the database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
from phonenumbers import timezone as phone_timezones
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from . import source
from .errors import InvalidField, NotFound
from .machine import admit
from .models import Lead, LeadEvent, Site
from .number_rules import allowed_countries, check_number  # noqa: F401 - allowed_countries was defined here
from .phones import e164, parse_phone
from .states import LeadStatus

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
    # Bot checks (dialer/abuse.py): the signed token from the config call, the honeypot, a CAPTCHA answer.
    form_token: str | None = None
    hp: str | None = None
    captcha: str | None = None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_timezone(name: str) -> bool:
    return name in _zones()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(lead: Lead, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(lead.token_hash, hash_token(token or ""))


async def site_by_key(session: AsyncSession, key: str) -> Site:
    # A key that could never exist is not worth a query (and NUL or broken UTF-16 would upset PostgreSQL).
    found = None
    if len(key) <= 64 and "\x00" not in key and key.encode("utf-8", "replace").decode() == key:
        found = (await session.execute(select(Site).where(Site.key == key))).scalar_one_or_none()
    if found is None:
        raise NotFound("No site with this key. Check the data-site attribute of the widget's tag.", "site")
    return found


def _check_length(name: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise InvalidField(name, f"This is too long: at most {limit} characters.", "too_long")


def _visitor_timezone(given: str | None, number: phonenumbers.PhoneNumber, site: Site) -> tuple[str, str]:
    if given:
        if not valid_timezone(given):
            raise InvalidField("timezone", f"'{given[:64]}' is not a known time zone name.", "invalid_timezone")
        return given, "browser"
    zones = [z for z in phone_timezones.time_zones_for_number(number) if valid_timezone(z)]
    if zones:
        return zones[0], "phone number"
    return site.timezone, "site"


def validate(site: Site, req: CallbackRequest, now: datetime) -> tuple[str, str, str]:
    """Check every field; returns the number in E.164, the visitor's time zone and where it came from."""
    for name in ("name", "message", "visitor_id", "page_url", "referrer"):
        _check_length(name, getattr(req, name), LIMITS[name])
    for key, value in req.utm.items():
        if key not in UTM_KEYS:
            raise InvalidField(f"utm.{key}", f"Unknown UTM tag '{key[:20]}'.", "unknown_field")
        _check_length(f"utm.{key}", value, LIMITS["utm"])
    number = parse_phone(req.phone, site.country)
    check_number(site, number)  # countries, number types, block list
    if site.consent_required and not req.consent:
        raise InvalidField("consent", "Please agree to be called before sending the request.", "consent_required")
    if req.scheduled_for is not None:
        if req.scheduled_for.tzinfo is None:
            raise InvalidField("scheduled_for", "The time needs a UTC offset, e.g. 2026-11-23T10:00:00+01:00.")
        if req.scheduled_for < now:
            raise InvalidField("scheduled_for", "This time has already passed. Please pick a later one.", "in_past")
    zone, zone_source = _visitor_timezone(req.timezone, number, site)
    return e164(number), zone, zone_source


async def accept(session: AsyncSession, req: CallbackRequest, now: datetime) -> tuple[Lead, str]:
    """Validate and write a new lead; returns it with the secret token that lets the visitor follow it."""
    site = await site_by_key(session, req.site)
    phone, zone, zone_source = validate(site, req, now)
    token = secrets.token_urlsafe(24)
    is_message = bool(req.message and req.message.strip())
    if is_message:
        status, wake_at = LeadStatus.RECEIVED, None
    else:
        status, wake_at = admit(scheduled_for=req.scheduled_for, now=now)
    returning = await _returning(session, site.id, req.visitor_id, phone)
    lead = Lead(
        site_id=site.id,
        kind="message" if is_message else "call",
        status=status,
        version=1,
        token_hash=hash_token(token),
        phone=phone,
        name=(req.name or "").strip() or None,
        message=req.message if is_message else None,
        timezone=zone,
        scheduled_for=req.scheduled_for,
        wake_at=wake_at,
        attempt=1,
        consent=req.consent,
        visitor_id=req.visitor_id,
        page_url=req.page_url,
        referrer=req.referrer,
        utm={k: v for k, v in req.utm.items() if v},
        source={
            "label": source.label(req.utm, req.referrer, req.page_url),
            "returning": returning,
            "timezone_source": zone_source,
            **req.extra,
        },
        created_at=now,
        updated_at=now,
    )
    session.add(lead)
    await session.flush()
    detail = f"request received ({lead.kind}); visitor's time zone {zone} from the {zone_source}"
    session.add(LeadEvent(lead_id=lead.id, at=now, kind="status", status=status, detail=detail))
    return lead, token


async def _returning(session: AsyncSession, site_id: int, visitor_id: str | None, phone: str) -> bool:
    query = select(Lead.id).where(Lead.site_id == site_id)
    query = query.where((Lead.phone == phone) | (Lead.visitor_id == visitor_id)) if visitor_id else query.where(
        Lead.phone == phone
    )
    return (await session.execute(query.limit(1))).first() is not None
