"""The widget's API: site config, callback requests and their status."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dialer.core import slots, windows
from dialer.core.errors import NotFound
from dialer.core.site_config import SiteConfig
from dialer.db.models import Lead
from dialer.engine.status import public_status
from dialer.engine.store import manager_step, queue_ahead
from dialer.intake.accept import CallbackRequest, accept, booked_slots, token_matches, valid_timezone
from dialer.protection import caps, screen
from dialer.runtime import Runtime
from dialer.sites.cache import SiteCache
from server.errors import ApiError
from server.widget_config import appearance

MAX_BODY = 16 * 1024
_STRINGS = ("site", "phone", "timezone", "message", "name", "visitor_id", "page_url", "referrer")
_BOT_FIELDS = ("form_token", "hp", "captcha")  # checked by dialer/screen.py
_KNOWN = {*_STRINGS, *_BOT_FIELDS, "scheduled_for", "utm", "consent", "visit"}
_VISIT_KEYS = {
    "visits": int, "first_seen": str, "landing_page": str, "language": str, "click_id": str,
    "first_touch": dict, "last_touch": dict,
}
# A touch is where one visit came from; first touch is kept from the visitor's first visit, last touch
# from their latest visit that had a source (a direct visit does not erase it).
_TOUCH_KEYS = ("source", "medium", "campaign", "term", "content", "referrer", "landing_page", "click_id", "at")


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def sites(request: Request) -> SiteCache:
    return request.app.state.sites  # type: ignore[no-any-return]


async def read_json(request: Request) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise ApiError(413, "too_large", f"The request is too large (at most {MAX_BODY} bytes).")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, "too_large", f"The request is too large (at most {MAX_BODY} bytes).")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body must be JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    if (where := screen.first_unstorable(data)) is not None:
        raise ApiError(422, "invalid_text", "This text holds characters that cannot be stored.", where[:40])
    return data


def _string(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ApiError(422, "required", f"'{name}' is required.", name)
        return None
    if not isinstance(value, str):
        raise ApiError(422, "invalid_type", f"'{name}' must be a string.", name)
    return value


def parse_callback(data: dict[str, Any]) -> CallbackRequest:
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ApiError(422, "unknown_field", f"Unknown field '{unknown[0][:40]}'.", unknown[0][:40])
    strings = {name: _string(data, name, required=name in ("site", "phone")) for name in _STRINGS}
    scheduled_for = None
    if (raw := _string(data, "scheduled_for")) is not None:
        try:
            scheduled_for = datetime.fromisoformat(raw)
        except ValueError:
            raise ApiError(
                422, "invalid_datetime", "Use an ISO 8601 time, e.g. 2026-11-23T10:00:00+01:00.", "scheduled_for"
            ) from None
        screen.check_datetime(scheduled_for)
    utm = data.get("utm") or {}
    if not isinstance(utm, dict) or not all(isinstance(v, str) for v in utm.values()):
        raise ApiError(422, "invalid_type", "'utm' must be an object of strings.", "utm")
    consent = data.get("consent", False)
    if not isinstance(consent, bool):
        raise ApiError(422, "invalid_type", "'consent' must be true or false.", "consent")
    return CallbackRequest(
        site=strings["site"] or "",
        phone=strings["phone"] or "",
        timezone=strings["timezone"],
        scheduled_for=scheduled_for,
        message=strings["message"],
        name=strings["name"],
        visitor_id=strings["visitor_id"],
        page_url=strings["page_url"],
        referrer=strings["referrer"],
        utm=utm,
        consent=consent,
        extra=_visit(data.get("visit")),
        **{name: _string(data, name) for name in _BOT_FIELDS},
    )


def _visit(raw: Any) -> dict[str, Any]:
    """Visit facts the widget keeps in first-party storage; anything unexpected is dropped, not trusted."""
    if not isinstance(raw, dict):
        return {}
    visit: dict[str, Any] = {}
    for key, kind in _VISIT_KEYS.items():
        value = raw.get(key)
        if isinstance(value, dict) and kind is dict:
            visit[key] = {k: v[:300] for k in _TOUCH_KEYS if isinstance(v := value.get(k), str) and v}
        elif isinstance(value, kind) and not isinstance(value, bool):
            visit[key] = value[:300] if isinstance(value, str) else max(0, min(int(value), 1_000_000))
    return visit


def cors_headers(request: Request, site: SiteConfig | None) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin:
        return {}
    if site is not None and site.origins and origin.rstrip("/") not in site.origins:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _visit_of(request: Request) -> screen.Visit:
    own = str(request.base_url).rstrip("/")
    return screen.Visit(request.client.host if request.client else None, request.headers.get("origin"), own)


async def site_config(request: Request) -> Response:
    rt = runtime(request)
    now = rt.clock.now()
    async with rt.sessions() as session:
        site, managers = await sites(request).get(session, request.path_params["site_key"])
        booked = await booked_slots(session, site, now)
    visitor_tz = request.query_params.get("timezone") or ""
    if not valid_timezone(visitor_tz):
        visitor_tz = site.timezone
    ring = rt.engine.policy.ring_timeout
    allowed = windows.allowed_at(now, site, managers, visitor_tz, ring) if managers else None
    offered = slots.offer(now, site, managers, visitor_tz, booked, ring=ring) if managers else []
    body = {
        "site": site.key,
        "name": site.name,
        "country": site.country,
        "timezone": visitor_tz,
        "call_now": allowed == now,
        "next_call_at": allowed.isoformat() if allowed else None,
        "consent_required": site.consent_required,
        "consent_text": site.consent_text,
        "slots": [{"start": s.isoformat(), "minutes": slots.slot_minutes(site)} for s in offered],
        # texts, colors, language, dir, position, triggers, exclude, hide_on, phone_example
        **appearance(site, request.query_params.get("lang")),
    }
    body.update(screen.config_fields(site, rt.settings.secret_key, rt.clock.now()))  # form_token
    return JSONResponse(body, headers={**cors_headers(request, site), "Cache-Control": "no-store"})


async def create_callback(request: Request) -> Response:
    rt = runtime(request)
    req = parse_callback(await read_json(request))
    async with rt.sessions() as session, session.begin():
        site, managers = await sites(request).get(session, req.site)
        now = rt.clock.now()
        validated = await screen.screen(
            session, site, req, _visit_of(request), now, secret=rt.settings.secret_key, limiter=rt.limiter
        )
        lead, token = await accept(session, req, now, site=site, managers=managers, validated=validated)
        await caps.apply(session, site, lead, now)
    rt.engine.nudge()
    body = {**public_status(lead), "token": token}
    return JSONResponse(body, status_code=201, headers=cors_headers(request, site))


async def preflight(request: Request) -> Response:
    origin = request.headers.get("origin", "*")
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )


async def load_lead(rt: Runtime, lead_id: str, token: str | None) -> Lead:
    lead = None
    if len(lead_id) <= 32 and screen.storable(lead_id):  # ids are 32 hex digits; NUL would upset PostgreSQL
        async with rt.sessions() as session:
            lead = (await session.execute(select(Lead).where(Lead.id == lead_id))).scalar_one_or_none()
    if lead is None or not token_matches(lead, token):
        # The same answer for "no such lead" and "wrong token": ids cannot be probed.
        raise NotFound("No such callback request, or the token does not match.", "token")
    return lead


async def get_callback(request: Request) -> Response:
    rt = runtime(request)
    lead = await load_lead(rt, request.path_params["lead_id"], request.query_params.get("token"))
    headers = {"Cache-Control": "no-store", **cors_headers(request, None)}
    return JSONResponse(await status_of(rt, lead), headers=headers)


async def status_of(rt: Runtime, lead: Lead) -> dict[str, Any]:
    position = None
    async with rt.sessions() as session:
        if lead.status == "queued" and (lead.wake_at is None or lead.wake_at > rt.clock.now()):
            # Waiting for a free manager (a lead just accepted is due at once, and has no place in line).
            position = await queue_ahead(session, lead) + 1
        step = await manager_step(session, lead)
    return public_status(lead, step, queue_position=position)


routes = [
    Route("/api/v1/sites/{site_key}/config", site_config, methods=["GET"]),
    Route("/api/v1/callbacks", create_callback, methods=["POST"]),
    Route("/api/v1/callbacks", preflight, methods=["OPTIONS"]),
    Route("/api/v1/callbacks/{lead_id}", get_callback, methods=["GET"]),
]
