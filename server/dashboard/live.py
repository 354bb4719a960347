"""The live page: today's leads changing status in place, calls in flight, the queue, missed leads
waiting for a human, and returning visitors. The page subscribes to its sites' broadcast channels over a
WebSocket; each message updates the row in place and the panels are fetched again (never the page)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from dialer.accounts.users import visible_sites
from dialer.broadcast.memory import Subscription
from dialer.core.states import CALLING, WAITING, LeadStatus
from dialer.db.models import Lead
from dialer.engine.status import site_channel
from dialer.reports.leads import site_names
from server.dashboard import notices
from server.dashboard.scope import Scope, scope
from server.dashboard.session import Ctx, access_of_websocket, runtime
from server.dashboard.templating import render
from server.live import refuse, wait_for_disconnect

POLICY_VIOLATION = 1008
TODAY_LIMIT = 200


@dataclass
class Board:
    today: list[Lead]
    calling: list[Lead]
    waiting: list[Lead]
    unhandled: list[Lead]
    returning: list[Lead]
    names: dict[int, str]
    now: datetime  # for "calls at …" in the queue


async def board(request: Request, sc: Scope) -> Board:
    rt = runtime(request)
    ids = [sc.site.id] if sc.site else list(sc.site_ids) or [-1]
    midnight = datetime.combine(rt.clock.now().astimezone(ZoneInfo(sc.zone)).date(), time(), ZoneInfo(sc.zone))
    async with rt.sessions() as session:
        mine = select(Lead).where(Lead.site_id.in_(ids))
        today = list((await session.execute(
            mine.where(Lead.created_at >= midnight).order_by(Lead.created_at.desc()).limit(TODAY_LIMIT))).scalars())
        active = list((await session.execute(
            mine.where(Lead.status.in_([s.value for s in CALLING | WAITING])).order_by(Lead.created_at)
            .limit(TODAY_LIMIT))).scalars())
        unhandled = list((await session.execute(
            # A message lead is `received` until someone calls back (which marks it handled): a status
            # test alone finds every lead waiting for a human, through the (site, status) index.
            mine.where(Lead.handled_at.is_(None))
            .where(Lead.status.in_([LeadStatus.MISSED.value, LeadStatus.UNREACHABLE.value,
                                    LeadStatus.RECEIVED.value]))
            .order_by(Lead.created_at.desc()).limit(TODAY_LIMIT))).scalars())
        names = await site_names(session, set(ids))
    return Board(
        today=today,
        calling=[lead for lead in active if lead.status in CALLING],
        waiting=[lead for lead in active if lead.status in WAITING],
        unhandled=unhandled,
        returning=[lead for lead in today if (lead.source or {}).get("returning")],
        names=names,
        now=rt.clock.now(),
    )


async def live_page(request: Request, ctx: Ctx) -> Response:
    sc = await scope(request, ctx)
    shown = await notices.for_page(request, ctx, sc)
    return render(ctx, "live.html", sc=sc, board=await board(request, sc), notices=shown)


async def live_panels(request: Request, ctx: Ctx) -> Response:
    sc = await scope(request, ctx)
    return render(ctx, "_live_panels.html", sc=sc, board=await board(request, sc))


async def live_socket(websocket: WebSocket) -> None:
    access = await access_of_websocket(websocket)
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host", "")
    # Cookies ride along on cross-site WebSocket handshakes too: only our own pages may open one.
    if access is None or (origin is not None and origin.split("://", 1)[-1] != host):
        await websocket.close(code=POLICY_VIOLATION, reason="sign in first")
        return
    rt = runtime(websocket)
    async with rt.sessions() as session:
        sites = await visible_sites(session, access)
    picked = websocket.query_params.get("site", "")
    ids = [s.id for s in sites if not picked or str(s.id) == picked]
    await websocket.accept()

    async def forward(site_id: int, updates: Subscription) -> None:
        async for message in updates:
            await websocket.send_json({**message, "site_id": site_id})

    refused: int | None = None

    async def until_disconnect() -> None:
        nonlocal refused
        refused = await wait_for_disconnect(websocket)
        tg.cancel_scope.cancel()

    async with contextlib.AsyncExitStack() as stack:
        subscriptions = [
            (site_id, await stack.enter_async_context(rt.broadcast.subscribe(site_channel(site_id))))
            for site_id in ids
        ]
        # Subscribed: anything from now on reaches this socket. The page re-reads its panels on "ready",
        # so a change between rendering the page and subscribing is not lost.
        await websocket.send_json({"type": "ready", "sites": ids})
        async with anyio.create_task_group() as tg:
            for site_id, updates in subscriptions:
                tg.start_soon(forward, site_id, updates)
            tg.start_soon(until_disconnect)
    await refuse(websocket, refused)
