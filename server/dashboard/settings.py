"""Settings (owners only): sites, their managers and the embed snippet; and the audit log.

Every change is validated as a whole (see `forms`) and written together with its audit line, in one
transaction: either both are saved or neither.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dialer.accounts import audit
from dialer.accounts.users import site_managers
from dialer.core.hours import Weekly
from dialer.db.models import Manager, Site
from dialer.sites.config import from_row
from server.dashboard import countries, forms
from server.dashboard.inputs import as_id
from server.dashboard.session import Ctx, runtime
from server.dashboard.templating import render

SITE_FIELDS = ("name", "origins", "country", "timezone", "caller_id", "routing", "recording", "consent_required",
               "consent_text", "settings", "any_country")
MANAGER_FIELDS = ("name", "phone", "position", "active", "working_hours")


def _form(ctx: Ctx) -> dict[str, str]:
    assert ctx.form is not None
    return {k: v for k, v in ctx.form.items() if isinstance(v, str)}


def site_form_values(site: Site) -> dict[str, str]:
    """The form as the site is configured now (its config: what the widget and the engine use)."""
    config = from_row(site)
    open_hours = Weekly(config.timezone, config.business_hours.days)  # without the closed dates
    start, end = config.calling_window
    values = {
        "name": site.name, "origins": "\n".join(site.origins or []), "country": site.country,
        "timezone": site.timezone, "caller_id": site.caller_id or "", "routing": config.routing,
        "sms_sender": config.sms_sender_setting or "",
        "recording": "on" if site.recording else "", "consent_required": "on" if site.consent_required else "",
        "consent_text": site.consent_text or "", "business_hours": forms.format_hours(open_hours),
        "closed_dates": "\n".join(sorted(d.isoformat() for d in config.business_hours.closed)),
        "window_start": forms.format_time(start), "window_end": forms.format_time(end),
        "countries": countries.shown(None if config.any_country else config.abuse.countries),
    }
    values.update({f"text_{k}": config.widget.texts.get(k, "") for k in forms.TEXTS})
    values.update({f"colour_{k}": config.widget.own_colors.get(k, "") for k in forms.COLOURS})
    return values


async def sites_page(request: Request, ctx: Ctx) -> Response:
    async with runtime(request).sessions() as session:
        sites = list((await session.execute(select(Site).order_by(Site.name, Site.id))).scalars())
    return render(ctx, "sites.html", sites=sites, public_url=runtime(request).settings.public_url)


async def _site(request: Request) -> Site:
    async with runtime(request).sessions() as session:
        site = await session.get(Site, int(request.path_params["site_id"]))
    if site is None:
        raise HTTPException(404, "No such site.")
    return site


def _site_form(request: Request, ctx: Ctx, site: Site, values: dict[str, str], *, errors: dict[str, str],
               saved: bool = False, status: int = 200) -> Response:
    return render(ctx, "site.html", status, site=site, values=values, errors=errors, saved=saved,
                  country_names=countries.names(),
                  routing=forms.ROUTING, texts=forms.TEXTS, colours=forms.COLOURS,
                  colour_defaults=forms.COLOUR_DEFAULTS, public_url=runtime(request).settings.public_url)


async def site_page(request: Request, ctx: Ctx) -> Response:
    site = await _site(request)
    return _site_form(request, ctx, site, site_form_values(site), errors={},
                      saved=request.query_params.get("saved") == "1")


async def site_save(request: Request, ctx: Ctx) -> Response:
    site = await _site(request)
    values = _form(ctx)
    try:
        config = from_row(site)
        new = forms.parse_site(values, dict(site.settings or {}), allowed=config.abuse.countries,
                               any_country=site.any_country)
    except forms.FormErrors as exc:
        return _site_form(request, ctx, site, values, errors=exc.errors, status=422)
    rt = runtime(request)
    assert ctx.access is not None
    async with rt.sessions() as session, session.begin():
        row = await session.get(Site, site.id, with_for_update=True)
        assert row is not None
        before = {k: getattr(row, k) for k in SITE_FIELDS}
        diff = audit.changes(before, new)
        for key, value in new.items():
            setattr(row, key, value)
        if diff:
            audit.record(session, at=rt.clock.now(), actor=ctx.access.email, user_id=ctx.access.user_id,
                         action="site.update", site_id=site.id, target=f"site {site.key}", detail=diff)
    return RedirectResponse(f"/dashboard/sites/{site.id}?saved=1", 303)


async def managers_page(request: Request, ctx: Ctx, *, errors: dict[str, str] | None = None,
                        failed: str = "", values: dict[str, str] | None = None, status: int = 200) -> Response:
    site = await _site(request)
    async with runtime(request).sessions() as session:
        managers = await site_managers(session, site.id)
    return render(ctx, "managers.html", status, site=site, managers=managers, errors=errors or {}, failed=failed,
                  values=values or {}, format_week=forms.format_week,
                  saved=request.query_params.get("saved", ""))


async def managers_get(request: Request, ctx: Ctx) -> Response:
    return await managers_page(request, ctx)


async def manager_save(request: Request, ctx: Ctx) -> Response:
    """Add a manager (no `manager_id` in the form) or change one."""
    site = await _site(request)
    values = _form(ctx)
    key = values.get("manager_id", "") or "new"
    try:
        new = forms.parse_manager(values, site.country)
    except forms.FormErrors as exc:
        return await managers_page(request, ctx, errors=exc.errors, failed=key, values=values, status=422)
    rt = runtime(request)
    assert ctx.access is not None
    async with rt.sessions() as session, session.begin():
        if key == "new":
            manager = Manager(site_id=site.id, **new)
            session.add(manager)
            await session.flush()
            action, diff = "manager.add", {k: [None, v] for k, v in new.items()}
        else:
            found = await session.get(Manager, as_id(key) or -1, with_for_update=True)
            if found is None or found.site_id != site.id:
                raise HTTPException(404, "No such manager on this site.")
            manager = found
            diff = audit.changes({k: getattr(manager, k) for k in MANAGER_FIELDS}, new)
            for field, value in new.items():
                setattr(manager, field, value)
            action = "manager.update"
        if diff:
            audit.record(session, at=rt.clock.now(), actor=ctx.access.email, user_id=ctx.access.user_id,
                         action=action, site_id=site.id, target=f"manager {manager.id} {manager.name}",
                         detail=_jsonable(diff))
    return RedirectResponse(f"/dashboard/sites/{site.id}/managers?saved={manager.id}", 303)


def _jsonable(diff: dict[str, Any]) -> dict[str, Any]:
    return {k: [v if isinstance(v, str | int | float | bool | list | dict | None) else str(v) for v in pair]
            for k, pair in diff.items()}


async def audit_page(request: Request, ctx: Ctx) -> Response:
    async with runtime(request).sessions() as session:
        entries = await audit.entries(session, None)
    return render(ctx, "audit.html", entries=entries)
