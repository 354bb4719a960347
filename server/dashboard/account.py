"""One's own account (password, sessions, "sign out everywhere") and, for owners, the list of users with
"remove": removing a user ends their sessions at once."""

from __future__ import annotations

from sqlalchemy import func, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dialer.accounts import audit, passwords, sessions
from dialer.accounts.users import MIN_PASSWORD, password_matches
from dialer.db.models import DashboardSession, Site, User, UserSite
from server.dashboard.auth import client_ip
from server.dashboard.session import Ctx, runtime
from server.dashboard.templating import render


async def account_page(request: Request, ctx: Ctx, *, errors: dict[str, str] | None = None,
                       status_code: int = 200) -> Response:
    assert ctx.access is not None
    rt = runtime(request)
    async with rt.sessions() as session:
        mine = await sessions.of_user(session, ctx.access.user_id, rt.clock.now())
    return render(ctx, "account.html", status_code, nav="account", mine=mine, errors=errors or {},
                  this=sessions.token_key(ctx.token), min_password=MIN_PASSWORD,
                  done=request.query_params.get("done", ""))


async def change_password(request: Request, ctx: Ctx) -> Response:
    """A new password (the current one first): every other session of the user ends; this one goes on."""
    assert ctx.access is not None
    rt = runtime(request)
    current, new, again = ctx.field("current"), ctx.field("password"), ctx.field("again")
    errors: dict[str, str] = {}
    if len(new) < MIN_PASSWORD:
        errors["password"] = f"Use a password of at least {MIN_PASSWORD} characters."
    elif new != again:
        errors["again"] = "The two new passwords differ."
    async with rt.sessions() as session:
        user = await session.get(User, ctx.access.user_id)
    try:
        if not await password_matches(user, current):
            errors["current"] = "That is not your current password."
        hashed = await passwords.hash_password(new) if not errors else ""
    except passwords.Busy:
        raise HTTPException(503, "Busy just now. Try again in a few seconds.", headers={"Retry-After": "5"}) from None
    if errors:
        return await account_page(request, ctx, errors=errors, status_code=422)
    async with rt.sessions() as session, session.begin():
        user = await session.get(User, ctx.access.user_id)
        assert user is not None
        ended = await sessions.set_password(session, user, hashed, keep=ctx.token)
        audit.record(session, at=rt.clock.now(), actor=user.email, user_id=user.id, action="password_changed",
                     target=user.email, detail={"sessions_ended": ended}, ip=client_ip(request))
    return RedirectResponse("/dashboard/account?done=password", 303)


async def users_page(request: Request, ctx: Ctx) -> Response:
    rt = runtime(request)
    now = rt.clock.now()
    async with rt.sessions() as session:
        users = list((await session.execute(select(User).order_by(User.email))).scalars())
        live: dict[int, int] = {uid: n for uid, n in await session.execute(
            select(DashboardSession.user_id, func.count()).where(DashboardSession.expires_at > now)
            .group_by(DashboardSession.user_id))}
        memberships = list(await session.execute(
            select(UserSite.user_id, Site.name).join(Site, Site.id == UserSite.site_id).order_by(Site.name)))
    sites: dict[int, list[str]] = {}
    for user_id, name in memberships:
        sites.setdefault(user_id, []).append(name)
    return render(ctx, "users.html", nav="users", users=users, live=live, sites=sites,
                  done=request.query_params.get("done", ""))


async def remove_user(request: Request, ctx: Ctx) -> Response:
    """Remove a user: their sessions end with them (and their audit lines stay, under their e-mail)."""
    assert ctx.access is not None
    rt = runtime(request)
    user_id = request.path_params["user_id"]
    if user_id == ctx.access.user_id:
        raise HTTPException(409, "You cannot remove yourself; ask another owner.")
    async with rt.sessions() as session, session.begin():
        user = await session.get(User, user_id)
        if user is None:
            raise HTTPException(404, "No such user.")
        ended = await sessions.end_all(session, user.id)
        audit.record(session, at=rt.clock.now(), actor=ctx.access.email, user_id=ctx.access.user_id,
                     action="user_removed", target=user.email, detail={"sessions_ended": ended},
                     ip=client_ip(request))
        await session.delete(user)
    return RedirectResponse("/dashboard/users?done=removed", 303)
