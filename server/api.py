"""The widget's API: site config, callback requests, their status, and cancelling them.

Its request and answer shapes are in server/schema.py (also the OpenAPI description's source); reading a
body into them is in server/decode.py.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dialer.core import slots, windows
from dialer.core.errors import NotFound
from dialer.core.states import CANCELLABLE, LeadStatus
from dialer.db.models import Lead, LeadEvent
from dialer.engine.status import public_status
from dialer.engine.store import manager_step, queue_ahead
from dialer.intake.accept import CallbackRequest, is_message, token_matches, valid_timezone, validate, write
from dialer.intake.schedule import booked_slots, schedule
from dialer.protection import caps, screen
from dialer.protection.ratelimit import NOTHING
from dialer.runtime import Runtime
from dialer.sites.cache import SiteCache
from server import cors, decode, schema
from server.errors import ApiError
from server.widget_config import appearance

MAX_BODY = decode.MAX_BODY


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def sites(request: Request) -> SiteCache:
    return request.app.state.sites  # type: ignore[no-any-return]


def answer(body: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, headers=headers, media_type="application/json")


def lead_request(body: schema.CallbackRequest) -> CallbackRequest:
    """What intake needs of the request (the bot fields are the screen's)."""
    return CallbackRequest(
        site=body.site,
        phone=body.phone,
        timezone=body.timezone,
        scheduled_for=body.scheduled_for,
        message=body.message,
        name=body.name,
        visitor_id=body.visitor_id,
        page_url=body.page_url,
        referrer=body.referrer,
        utm=msgspec.to_builtins(body.utm) if body.utm else {},
        consent=body.consent,
        extra=msgspec.to_builtins(body.visit) if body.visit else {},
    )


def _visit_of(request: Request) -> screen.Visit:
    own = str(request.base_url).rstrip("/")
    return screen.Visit(request.client.host if request.client else None, request.headers.get("origin"), own)


async def site_config(request: Request) -> Response:
    rt = runtime(request)
    now = rt.clock.now()
    async with rt.sessions() as session:
        site, managers = await sites(request).get(session, request.path_params["site_key"])
        cors.note_site(request, site)
        booked = await booked_slots(session, site, now)
    visitor_tz = request.query_params.get("timezone") or ""
    if not valid_timezone(visitor_tz):
        visitor_tz = site.timezone
    ring = rt.engine.policy.ring_timeout
    allowed = windows.allowed_at(now, site, managers, visitor_tz, ring) if managers else None
    offered = slots.offer(now, site, managers, visitor_tz, booked, ring=ring) if managers else []
    body: dict[str, Any] = {
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
    config = msgspec.convert(body, schema.SiteConfig)  # the answer is what the description says
    return answer(config, headers={"Cache-Control": "no-store"})


async def create_callback(request: Request) -> Response:
    """Parse, screen, validate, schedule, admit, write, count, answer: each step raises what the visitor is
    told. The rate limits count last, so a request refused at any step (the database's own "one active
    request per number" included) has used up nothing."""
    rt = runtime(request)
    body = decode.callback_request(await decode.read_json(request))
    visit, proof, req = _visit_of(request), screen.Proof(body.form_token, body.hp, body.captcha), lead_request(body)
    counted = NOTHING
    try:
        async with rt.sessions() as session, session.begin():
            site, managers = await sites(request).get(session, req.site)
            cors.note_site(request, site)  # from here on, an error is shown only to the site's own pages
            now = rt.clock.now()
            number = screen.check(site, visit, proof, req.phone, now, secret=rt.settings.secret_key)
            checked = validate(site, req, now, number)
            when = await schedule(session, site, req.scheduled_for, checked.zone, now, is_message=is_message(req),
                                  managers=managers)
            await screen.admit(session, site, visit, proof, phone=checked.phone, is_call=when.is_call)
            guarded = screen.one_per_number(site, when.is_call)
            try:
                lead, token = await write(session, site, req, checked, when, now, one_per_number=guarded)
            except IntegrityError:
                if guarded:  # another process wrote this number's request since `admit` looked
                    raise screen.already_requested() from None
                raise
            await caps.apply(session, site, lead, now)  # past a daily cap: kept as a message, or for tomorrow
            counted = await screen.count(session, site, visit, proof, now, phone=checked.phone,
                                         visitor_id=req.visitor_id, limiter=rt.limiter)
    except BaseException:
        await rt.limiter.give_back(counted)  # counted in Redis, but the commit failed: nothing was written
        raise
    rt.engine.nudge()
    return answer(schema.CreatedLead(**public_status(lead), token=token), 201)


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
    headers = {"Cache-Control": "no-store"}
    return answer(schema.LeadStatus(**await status_of(rt, lead)), headers=headers)


async def cancel_callback(request: Request) -> Response:
    """The visitor withdraws their request: calls under way are hung up, nobody is rung for it again."""
    rt = runtime(request)
    lead = await load_lead(rt, request.path_params["lead_id"], request.query_params.get("token"))
    headers = {"Cache-Control": "no-store"}
    if lead.status not in CANCELLABLE:
        raise ApiError(409, "already_over", cannot_cancel(lead))
    if await rt.engine.cancel(lead.id) is None:  # it ended in the meantime
        lead = await load_lead(rt, lead.id, request.query_params.get("token"))
        raise ApiError(409, "already_over", cannot_cancel(lead))
    async with rt.sessions() as session, session.begin():
        session.add(LeadEvent(lead_id=lead.id, at=rt.clock.now(), kind="note", detail="cancelled by the visitor"))
    lead = await load_lead(rt, lead.id, request.query_params.get("token"))
    return answer(schema.LeadStatus(**await status_of(rt, lead)), headers=headers)


def cannot_cancel(lead: Lead) -> str:
    """Why a lead cannot be cancelled: it is over, or a message (nobody is called for it)."""
    if lead.status == LeadStatus.RECEIVED:
        return "This is a message: nobody will call for it, so there is nothing to cancel."
    if lead.status == LeadStatus.CANCELLED:
        return "This request was cancelled already."
    return f"This request is over ({lead.status.replace('_', ' ')}): there is nothing left to cancel."


async def status_of(rt: Runtime, lead: Lead) -> dict[str, Any]:
    position = None
    async with rt.sessions() as session:
        if lead.status == "queued" and (lead.wake_at is None or lead.wake_at > rt.clock.now()):
            # Waiting for a free manager (a lead just accepted is due at once, and has no place in line).
            position = await queue_ahead(session, lead) + 1
        step = await manager_step(session, lead)
        site, managers = await rt.sites.get_by_id(session, lead.site_id)
    hunt = len(managers) if site.routing != "simultaneous" else None  # as the engine tells it (telling.py)
    return public_status(lead, step, queue_position=position, managers=hunt)


routes = [
    Route("/api/v1/sites/{site_key}/config", site_config, methods=["GET"]),
    Route("/api/v1/callbacks", create_callback, methods=["POST"]),
    Route("/api/v1/callbacks/{lead_id}", get_callback, methods=["GET"]),
    Route("/api/v1/callbacks/{lead_id}", cancel_callback, methods=["DELETE"]),
]
