"""Signing in and out. Failed attempts are written to the audit log, which is also what limits them:
so the limit holds across every server process and a restart does not reset it."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dialer.accounts import audit
from dialer.accounts.users import authenticate, normal_email
from server.dashboard.session import Ctx, clear_cookie, runtime, sign_in
from server.dashboard.templating import render

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_ADDRESS = 20


def _safe_next(target: str) -> str:
    # Only our own pages: never an absolute URL or a protocol-relative one.
    return target if target.startswith("/dashboard") and not target.startswith("//") else "/dashboard"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_page(request: Request, ctx: Ctx) -> Response:
    if ctx.access is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next", "")), 303)
    return render(ctx, "login.html", next=_safe_next(request.query_params.get("next", "")), email="")


async def login(request: Request, ctx: Ctx) -> Response:
    rt = runtime(request)
    email, password = normal_email(ctx.field("email")), ctx.field("password")
    target = _safe_next(ctx.field("next"))
    now, ip = rt.clock.now(), client_ip(request)
    async with rt.sessions() as session, session.begin():
        by_email = await audit.recent_failures(session, email, now, WINDOW)
        by_ip = await audit.recent_failures(session, f"ip:{ip}", now, WINDOW)
        if by_email >= MAX_FAILURES_PER_EMAIL or by_ip >= MAX_FAILURES_PER_ADDRESS:
            message = "Too many failed sign-ins. Wait 15 minutes, then try again."
            return render(ctx, "login.html", 429, error=message, email=email, next=target)
        user = await authenticate(session, email, password) if email and password else None
        if user is None:
            for target_key in (email, f"ip:{ip}"):
                audit.record(session, at=now, actor=email, action=audit.LOGIN_FAILED, target=target_key, ip=ip)
        else:
            user.last_login_at = now
            audit.record(session, at=now, actor=user.email, user_id=user.id, action="login", target=user.email,
                         ip=ip)
    if user is None:
        return render(ctx, "login.html", 401, error="Wrong email or password.", email=email, next=target)
    sign_in(ctx, user)
    return RedirectResponse(target, 303)


async def logout(request: Request, ctx: Ctx) -> Response:
    response = RedirectResponse("/dashboard/login", 303)
    clear_cookie(response, request)
    ctx.fresh = False
    return response
