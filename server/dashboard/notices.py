"""Site notices (a daily cap was reached, see `dialer/protection/caps.py`) for the owners: shown on the
live board and the leads page until an owner dismisses one."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dialer.protection import caps
from server.dashboard.inputs import as_id
from server.dashboard.scope import Scope
from server.dashboard.session import Ctx, runtime

SHOWN = 20  # the newest; older ones wait until these are dismissed
TITLES = {"daily_call_cap": "Daily call cap reached", "daily_spend_cap": "Daily spending cap reached",
          "lead_parked": "Leads stopped after repeated errors"}


@dataclass(frozen=True)
class Notice:
    id: int
    site_id: int
    site: str
    title: str
    day: str
    detail: str


async def for_page(request: Request, ctx: Ctx, sc: Scope) -> list[Notice]:
    """The unseen notices of the sites the page shows, for an owner (nobody else is shown them)."""
    if ctx.access is None or not ctx.access.is_owner:
        return []
    names = {site.id: site.name for site in sc.sites}
    ids = [sc.site.id] if sc.site else list(names)
    if not ids:
        return []
    async with runtime(request).sessions() as session:
        found = await caps.unseen_notices(session, ids, limit=SHOWN)
    return [Notice(n.id, n.site_id, names.get(n.site_id, ""), TITLES.get(n.kind, n.kind.replace("_", " ")),
                   n.day, n.detail) for n in found]


async def dismiss(request: Request, ctx: Ctx) -> Response:
    """An owner has read a notice: it is no longer shown, to any owner."""
    assert ctx.access is not None
    rt = runtime(request)
    site = as_id(ctx.field("site"))
    done = False
    if site is not None and ctx.access.may_see(site):
        async with rt.sessions() as session, session.begin():
            done = await caps.mark_seen(session, site, request.path_params["notice_id"], rt.clock.now())
    if not done:
        raise HTTPException(404, "No such notice on this site, or it was dismissed already.")
    return RedirectResponse(_back(ctx.field("next")), 303)


def _back(target: str) -> str:
    """Back to the page the notice was dismissed on; never off the dashboard."""
    if target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target:
        return target
    return "/dashboard/"
