"""The dashboard under /dashboard: live board, leads, costs, settings; behind sign-in."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from server.dashboard import account, auth, costs, leads, live, notices, settings
from server.dashboard.session import page
from server.pages import STATIC

_ASSETS = {"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "application/javascript; charset=utf-8"}


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        return Response("Not found", 404)
    return FileResponse(STATIC / name, media_type=_ASSETS[name], headers={"Cache-Control": "public, max-age=300"})


def _routes() -> list[BaseRoute]:
    return [
        Route("/", page(live.live_page), methods=["GET"]),
        Route("/live/panels", page(live.live_panels), methods=["GET"]),
        WebSocketRoute("/live/ws", live.live_socket),
        Route("/login", page(auth.login_page, public=True), methods=["GET"]),
        Route("/login", page(auth.login, public=True), methods=["POST"]),
        Route("/logout", page(auth.logout), methods=["POST"]),
        Route("/logout-everywhere", page(auth.logout_everywhere), methods=["POST"]),
        Route("/account", page(account.account_page), methods=["GET"]),
        Route("/account/password", page(account.change_password), methods=["POST"]),
        Route("/users", page(account.users_page, owner=True), methods=["GET"]),
        Route("/users/{user_id:int}/remove", page(account.remove_user, owner=True), methods=["POST"]),
        Route("/leads", page(leads.leads_page), methods=["GET"]),
        Route("/leads.csv", page(leads.leads_csv), methods=["GET"]),
        Route("/leads/{lead_id}", page(leads.lead_page), methods=["GET"]),
        Route("/leads/{lead_id}/call-back", page(leads.call_back), methods=["POST"]),
        Route("/leads/{lead_id}/handled", page(leads.mark_handled), methods=["POST"]),
        Route("/leads/{lead_id}/cancel", page(leads.cancel), methods=["POST"]),
        Route("/recordings/{leg_id}", page(leads.recording), methods=["GET"]),
        Route("/notices/{notice_id:int}/seen", page(notices.dismiss, owner=True), methods=["POST"]),
        Route("/costs", page(costs.costs_page), methods=["GET"]),
        Route("/costs.csv", page(costs.costs_csv), methods=["GET"]),
        Route("/sites", page(settings.sites_page, owner=True), methods=["GET"]),
        Route("/sites/{site_id:int}", page(settings.site_page, owner=True), methods=["GET"]),
        Route("/sites/{site_id:int}", page(settings.site_save, owner=True), methods=["POST"]),
        Route("/sites/{site_id:int}/managers", page(settings.managers_get, owner=True), methods=["GET"]),
        Route("/sites/{site_id:int}/managers", page(settings.manager_save, owner=True), methods=["POST"]),
        Route("/audit", page(settings.audit_page, owner=True), methods=["GET"]),
        Route("/static/{name}", asset, methods=["GET"]),
    ]


routes: list[BaseRoute] = [Mount("/dashboard", routes=_routes())]
