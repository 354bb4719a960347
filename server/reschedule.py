"""The page a visitor reaches from the text message after a missed or unreachable call: pick a new time."""

from __future__ import annotations

from html import escape

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from dialer.core import slots
from dialer.core.errors import InvalidField
from dialer.core.machine import IllegalMove
from dialer.core.notices import local_time
from dialer.core.states import LeadStatus
from dialer.db.models import Lead, Site
from dialer.intake.schedule import booked_slots
from server.api import runtime

REOPENABLE = {LeadStatus.MISSED, LeadStatus.UNREACHABLE}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title>"
        "<style>body{font:18px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}"
        "button{font:inherit;padding:.6rem 1rem;margin:.25rem 0;width:100%;border-radius:8px;"
        "border:1px solid #0b6e4f;background:#fff;color:#0b6e4f;cursor:pointer}</style>"
        f"<h1>{escape(title)}</h1>{body}</html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _refused(site: Site, field: str, message: str) -> HTMLResponse:
    """A 422 that names the form field it is about (`data-field`), as the JSON API's errors do."""
    return _page(site.name, f"<p role=alert data-field={escape(field)}>{escape(message)}</p>", 422)


async def _load(request: Request) -> tuple[Lead, Site] | Response:
    rt = runtime(request)
    lead_id = request.path_params["lead_id"]
    sig = request.query_params.get("sig")
    if request.method == "POST":
        sig = str((await request.form()).get("sig") or "")
    if not rt.engine.notices.verify(lead_id, sig):
        return _page("Link not valid", "<p>This link is not valid. Please use the link from our message.</p>", 404)
    async with rt.sessions() as session:
        row = (await session.execute(select(Lead, Site).join(Site).where(Lead.id == lead_id))).first()
    if row is None:
        return _page("Link not valid", "<p>This request no longer exists.</p>", 404)
    return row[0], row[1]


async def pick_time(request: Request) -> Response:
    found = await _load(request)
    if isinstance(found, Response):
        return found
    lead, site = found
    rt = runtime(request)
    if lead.status not in REOPENABLE:
        when = lead.scheduled_for
        text = f"We will call you on {local_time(when, lead.timezone)}." if when and lead.status == "scheduled" else (
            "Your request is already being taken care of.")
        return _page(site.name, f"<p>{escape(text)}</p>")
    now = rt.clock.now()
    async with rt.sessions() as session:
        config, managers = await rt.sites.get_by_id(session, site.id)
        booked = await booked_slots(session, config, now)
    offered = slots.offer(now, config, managers, lead.timezone, booked, ring=rt.engine.policy.ring_timeout)
    sig = escape(request.query_params.get("sig") or "")
    buttons = "".join(
        f"<button name=start value='{s.isoformat()}'>{escape(local_time(s, lead.timezone))}</button>" for s in offered
    )
    body = (
        "<p>Sorry we missed each other. Pick a time (your time zone) and we will call you then.</p>"
        f"<form method=post><input type=hidden name=sig value='{sig}'>{buttons}</form>"
        if offered else "<p>No times are free in the coming days. We will get in touch.</p>"
    )
    return _page(site.name, body)


async def book_time(request: Request) -> Response:
    found = await _load(request)
    if isinstance(found, Response):
        return found
    lead, site = found
    rt = runtime(request)
    try:
        when = slots.parse_picked_time(str((await request.form()).get("start") or ""), "start")
    except InvalidField as exc:
        return _refused(site, exc.field, exc.message)
    if lead.status not in REOPENABLE:
        return _refused(site, "start", "This request is already being taken care of.")
    now = rt.clock.now()
    async with rt.sessions() as session:
        config, managers = await rt.sites.get_by_id(session, site.id)
        booked = await booked_slots(session, config, now)
    problem = slots.check(when, now, config, managers, lead.timezone, booked, ring=rt.engine.policy.ring_timeout)
    if problem:
        return _refused(site, "start", problem)
    try:
        await rt.engine.reschedule(lead.id, when)
    except IllegalMove as exc:  # someone called them back meanwhile, or a newer request is in hand
        return _refused(site, "start", str(exc) or "This request is already being taken care of.")
    return _page(site.name, f"<p>Thank you. We will call you on {escape(local_time(when, lead.timezone))}.</p>")


routes = [
    Route("/callback/{lead_id}", pick_time, methods=["GET"]),
    Route("/callback/{lead_id}", book_time, methods=["POST"]),
]
