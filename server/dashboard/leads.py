"""The leads list (and its CSV), a lead's page, "call back now", "cancel", "handled" and the recording proxy."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from dialer.accounts.users import own_manager_id, site_managers
from dialer.core.machine import CALLABLE_AGAIN, IllegalMove
from dialer.core.states import CANCELLABLE, LeadStatus
from dialer.db.models import CallLeg, Lead, LeadEvent, Manager, Site, TextMessage
from dialer.reports.filters import LeadFilter
from dialer.reports.leads import LeadRow, filter_choices, iter_leads, list_leads, whereabouts
from dialer.telephony.base import ProviderError
from server.dashboard import notices
from server.dashboard.inputs import an_id, as_id, page_number
from server.dashboard.scope import Scope, parse_day, scope, visible_lead
from server.dashboard.session import Ctx, runtime
from server.dashboard.templating import render

PER_PAGE = 50
STATUSES = [s.value for s in LeadStatus]


def lead_filter(request: Request, sc: Scope) -> tuple[LeadFilter, dict[str, str]]:
    q = request.query_params
    status = q.get("status") if q.get("status") in STATUSES else None
    start, end = parse_day(q.get("from"), "from"), parse_day(q.get("to"), "to")
    tz = ZoneInfo(sc.zone)
    f = sc.filter(
        status=status,
        source=q.get("source") or None,
        campaign=q.get("campaign") or None,
        start=datetime.combine(start, time(), tz) if start else None,
        end=datetime.combine(end + timedelta(days=1), time(), tz) if end else None,
    )
    shown = {"site": str(sc.site.id) if sc.site else "", "status": status or "", "source": f.source or "",
             "campaign": f.campaign or "", "from": start.isoformat() if start else "",
             "to": end.isoformat() if end else ""}
    return f, shown


async def leads_page(request: Request, ctx: Ctx) -> Response:
    sc = await scope(request, ctx)
    f, shown = lead_filter(request, sc)
    page = page_number(request.query_params.get("page"))
    async with runtime(request).sessions() as session:
        rows, total = await list_leads(session, f, page=page, per_page=PER_PAGE)
        sources, campaigns = await filter_choices(session, f)
    pages = max(1, -(-total // PER_PAGE))
    query = {k: v for k, v in shown.items() if v}
    return render(
        ctx, "leads.html", sc=sc, rows=rows, total=total, page=page, pages=pages, shown=shown,
        statuses=STATUSES, sources=sources, campaigns=campaigns, notices=await notices.for_page(request, ctx, sc),
        link=lambda **extra: "?" + urlencode({**query, **extra}),
        csv_link="/dashboard/leads.csv" + ("?" + urlencode(query) if query else ""),
    )


CSV_COLUMNS = ["id", "created_at", "site", "kind", "status", "phone", "name", "source", "campaign", "page_url",
               "attempt", "cost", "cost_pending_legs", "outcome"]


def csv_row(row: LeadRow) -> list[str]:
    lead = row.lead
    return [lead.id, lead.created_at.isoformat(), row.site_name, lead.kind, lead.status, lead.phone,
            lead.name or "", str((lead.source or {}).get("label") or ""), str((lead.utm or {}).get("campaign") or ""),
            lead.page_url or "", str(lead.attempt), f"{row.cost:.5f}", str(row.pending), lead.outcome or ""]


def csv_response(rows: list[list[str]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([text_cell(c) for c in row])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# Spreadsheets run a cell as a formula when it starts with one of these, also after leading blanks (a
# newline, a tab, spaces), and some treat a leading tab or carriage return as the start of one too.
_FORMULA = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")  # and their full-width forms
_BLANKS = " \t\r\n\x0b\x0c"
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")  # a phone number in E.164, a cost: left as they are


def text_cell(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that could start a formula gets a leading apostrophe."""
    if _PLAIN_NUMBER.fullmatch(cell):
        return cell
    stripped = cell.lstrip(_BLANKS)
    if stripped[:1] in _FORMULA or (cell[:1] in "\t\r" and cell):
        return "'" + cell
    return cell


async def leads_csv(request: Request, ctx: Ctx) -> Response:
    sc = await scope(request, ctx)
    f, _ = lead_filter(request, sc)
    async with runtime(request).sessions() as session:
        rows = await iter_leads(session, f)
    return csv_response([CSV_COLUMNS, *(csv_row(r) for r in rows)], "leads.csv")


async def lead_page(request: Request, ctx: Ctx) -> Response:
    lead = await visible_lead(request, ctx, request.path_params["lead_id"])
    rt = runtime(request)
    async with rt.sessions() as session:
        site = await session.get(Site, lead.site_id)
        legs = list((await session.execute(
            select(CallLeg).where(CallLeg.lead_id == lead.id).order_by(CallLeg.created_at, CallLeg.step))).scalars())
        events = list((await session.execute(
            select(LeadEvent).where(LeadEvent.lead_id == lead.id).order_by(LeadEvent.at, LeadEvent.id))).scalars())
        texts = list((await session.execute(
            select(TextMessage).where(TextMessage.lead_id == lead.id).order_by(TextMessage.created_at))).scalars())
        managers = await site_managers(session, lead.site_id)
        assert ctx.access is not None
        mine = await own_manager_id(session, ctx.access.user_id, lead.site_id)
        earlier = list((await session.execute(
            select(Lead).where(Lead.site_id == lead.site_id, Lead.phone == lead.phone, Lead.id != lead.id)
            .order_by(Lead.created_at.desc()).limit(10))).scalars())
    names = {m.id: m.name for m in managers}
    known = [leg.price for leg in legs if leg.price is not None]
    assert site is not None
    return render(
        ctx, "lead.html", lead=lead, site=site, legs=legs, events=events, texts=texts, names=names,
        managers=managers,
        mine=mine, earlier=earlier, where=whereabouts(lead.phone, rt.clock.now()), zone=site.timezone,
        visitor_now=rt.clock.now().astimezone(ZoneInfo(lead.timezone)),
        cost=sum(known, start=Decimal("0.00000")), pending=sum(1 for leg in legs if leg.price is None),
        unit=next((leg.price_unit for leg in legs if leg.price_unit), site.currency),
        can_call_back=lead.status in CALLABLE_AGAIN, needs_handling=_needs_handling(lead),
        can_cancel=lead.status in CANCELLABLE,
        message=request.query_params.get("done", ""),
        first=names.get(as_id(request.query_params.get("manager", "")) or -1),
    )


def _needs_handling(lead: Lead) -> bool:
    return lead.handled_at is None and (lead.status in (LeadStatus.MISSED, LeadStatus.UNREACHABLE)
                                        or lead.kind == "message")


async def call_back(request: Request, ctx: Ctx) -> Response:
    lead = await visible_lead(request, ctx, request.path_params["lead_id"])
    rt = runtime(request)
    manager_id = an_id(ctx.field("manager_id"), "manager_id")
    async with rt.sessions() as session:
        manager = await session.get(Manager, manager_id)
    if manager is None or manager.site_id != lead.site_id or not manager.active:
        raise HTTPException(422, "That manager is not an active manager of this lead's site.")
    if lead.status not in CALLABLE_AGAIN:
        raise HTTPException(409, f"This lead is {lead.status.replace('_', ' ')}: it cannot be called back now.")
    try:
        await rt.engine.call_back_now(lead.id, manager_id)
    except IllegalMove as exc:
        raise HTTPException(409, str(exc)) from None
    assert ctx.access is not None
    async with rt.sessions() as session, session.begin():
        # A plain UPDATE of a column the engine never reads: it must not race the engine's versioned steps.
        await session.execute(update(Lead).where(Lead.id == lead.id).values(handled_by=ctx.access.email))
    return RedirectResponse(f"/dashboard/leads/{lead.id}?done=call_back&manager={manager_id}", 303)


async def cancel(request: Request, ctx: Ctx) -> Response:
    """Withdraw the request (the visitor asked by phone or mail, say): calls under way are hung up."""
    lead = await visible_lead(request, ctx, request.path_params["lead_id"])
    rt = runtime(request)
    if lead.status not in CANCELLABLE or await rt.engine.cancel(lead.id) is None:
        lead = await visible_lead(request, ctx, lead.id)
        raise HTTPException(409, f"This lead is {lead.status.replace('_', ' ')}: there is nothing left to cancel.")
    assert ctx.access is not None
    async with rt.sessions() as session, session.begin():
        session.add(LeadEvent(lead_id=lead.id, at=rt.clock.now(), kind="note",
                              detail=f"cancelled by {ctx.access.email} on the dashboard"))
    return RedirectResponse(f"/dashboard/leads/{lead.id}?done=cancelled", 303)


async def mark_handled(request: Request, ctx: Ctx) -> Response:
    lead = await visible_lead(request, ctx, request.path_params["lead_id"])
    rt = runtime(request)
    assert ctx.access is not None
    async with rt.sessions() as session, session.begin():
        query = update(Lead).where(Lead.id == lead.id, Lead.handled_at.is_(None))
        await session.execute(query.values(handled_at=rt.clock.now(), handled_by=ctx.access.email))
    return RedirectResponse(f"/dashboard/leads/{lead.id}?done=handled", 303)


async def recording(request: Request, ctx: Ctx) -> Response:
    rt = runtime(request)
    async with rt.sessions() as session:
        leg = await session.get(CallLeg, request.path_params["leg_id"])
    if leg is None or not leg.recording_url:
        raise HTTPException(404, "No recording for this call.")
    await visible_lead(request, ctx, leg.lead_id)
    stream = getattr(rt.provider, "stream_recording", None)
    if stream is not None:  # passed on as it arrives, never read whole into memory
        try:
            media_type, chunks = await stream(leg.recording_url)
        except ProviderError as exc:
            raise HTTPException(502, f"The recording could not be fetched from the provider: {exc.reason}") from None
        return StreamingResponse(chunks, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})
    try:
        body, media_type = await rt.provider.fetch_recording(leg.recording_url)
    except ProviderError as exc:
        raise HTTPException(502, f"The recording could not be fetched from the provider: {exc.reason}") from None
    return Response(body, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})
