"""Signing in and out.

A sign-in first takes its place in the attempt limit (dialer/accounts/signin_limit.py), then checks the
password in the password pool with no database connection held, then opens a server-side session.
Failed attempts are also written to the audit log."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dialer.accounts import audit, passwords, sessions, signin_limit
from dialer.accounts.users import active_user, normal_email, password_matches
from dialer.core.errors import RateLimited
from dialer.db.models import User
from server.dashboard.session import Ctx, runtime, signed_in, signed_out
from server.dashboard.templating import render

BUSY_RETRY_AFTER = 5  # seconds


def _safe_next(target: str) -> str:
    # Only our own pages: never an absolute URL, a protocol-relative one or a backslash trick.
    ok = target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target
    return target if ok else "/dashboard"


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_page(request: Request, ctx: Ctx) -> Response:
    if ctx.access is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next", "")), 303)
    return render(ctx, "login.html", next=_safe_next(request.query_params.get("next", "")), email="")


async def login(request: Request, ctx: Ctx) -> Response:
    rt = runtime(request)
    email, password = normal_email(ctx.field("email"))[:254], ctx.field("password")
    target = _safe_next(ctx.field("next"))
    now, ip = rt.clock.now(), client_ip(request)
    secret = rt.settings.secret_key
    limits = signin_limit.rules(email, ip)
    try:
        async with rt.sessions() as session, session.begin():
            await signin_limit.take(session, secret, limits, now)
    except RateLimited as exc:
        response = render(ctx, "login.html", 429, error=exc.message, email=email, next=target)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    async with rt.sessions() as session:
        user = await active_user(session, email) if email else None
    try:
        ok = bool(email and password) and await password_matches(user, password)
    except passwords.Busy:
        raise HTTPException(503, "Signing in is busy just now. Try again in a few seconds.",
                            headers={"Retry-After": str(BUSY_RETRY_AFTER)}) from None
    async with rt.sessions() as session, session.begin():
        user = await session.get(User, user.id) if ok and user is not None else None
        if user is None or not user.active:
            ok = False
            for target_key in (email, f"ip:{ip}"):
                audit.record(session, at=now, actor=email, action=audit.LOGIN_FAILED, target=target_key, ip=ip)
        else:
            if passwords.needs_rehash(user.password_hash):
                user.password_hash = await passwords.hash_password(password)
            user.last_login_at = now
            await signin_limit.give_back(session, secret, limits, now)
            audit.record(session, at=now, actor=user.email, user_id=user.id, action="login", target=user.email,
                         ip=ip)
            await sessions.end(session, ctx.token)  # the browser's previous session, if it had one
            await sessions.purge_expired(session, now)  # indexed on expires_at: cheap, and sign-ins are rare
            opened = await sessions.open_session(session, user, now, ip=ip,
                                                 user_agent=request.headers.get("user-agent", ""))
    if not ok:
        return render(ctx, "login.html", 401, error="Wrong email or password.", email=email, next=target)
    signed_in(ctx, opened)
    return RedirectResponse(target, 303)


async def logout(request: Request, ctx: Ctx) -> Response:
    async with runtime(request).sessions() as session, session.begin():
        await sessions.end(session, ctx.token)
    signed_out(ctx)
    return RedirectResponse("/dashboard/login", 303)


async def logout_everywhere(request: Request, ctx: Ctx) -> Response:
    """End every session of this user, this browser's included."""
    assert ctx.access is not None
    rt = runtime(request)
    async with rt.sessions() as session, session.begin():
        ended = await sessions.end_all(session, ctx.access.user_id)
        audit.record(session, at=rt.clock.now(), actor=ctx.access.email, user_id=ctx.access.user_id,
                     action="logout_everywhere", target=ctx.access.email, detail={"sessions": ended},
                     ip=client_ip(request))
    signed_out(ctx)
    return RedirectResponse("/dashboard/login", 303)
