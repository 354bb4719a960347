"""The dashboard's session cookie and CSRF tokens.

The cookie holds a signed, timestamped `{user, csrf, pw}` (itsdangerous, keyed by RINGBACK_SECRET_KEY):
HttpOnly, SameSite=Lax, and Secure whenever the request came over HTTPS. `pw` is a digest of the user's
password hash, so changing a password ends every session signed before it. Every form carries the
session's CSRF token and a POST without the right one is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from dialer.accounts.users import Access, access_for
from dialer.db.models import User
from dialer.runtime import Runtime

COOKIE = "ringback_session"
MAX_AGE = 7 * 24 * 3600
CSRF_FIELD = "csrf"


def runtime(conn: HTTPConnection) -> Runtime:
    return conn.app.state.runtime  # type: ignore[no-any-return]


def _serializer(conn: HTTPConnection) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(runtime(conn).settings.secret_key, salt="ringback.dashboard.session")


def password_mark(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def read_cookie(conn: HTTPConnection) -> dict[str, Any]:
    raw = conn.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer(conn).loads(raw, max_age=MAX_AGE)
    except BadSignature:  # also covers an expired signature
        return {}
    return data if isinstance(data, dict) else {}


def is_https(conn: HTTPConnection) -> bool:
    return conn.url.scheme in ("https", "wss")


def write_cookie(response: Response, conn: HTTPConnection, data: dict[str, Any]) -> None:
    response.set_cookie(
        COOKIE,
        _serializer(conn).dumps(data),
        max_age=MAX_AGE,
        path="/dashboard",
        httponly=True,
        samesite="lax",
        secure=is_https(conn),
    )


def clear_cookie(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="lax", secure=is_https(conn))


@dataclass
class Ctx:
    """One dashboard request: who is signed in, the session's CSRF token and the parsed form."""

    request: Request
    data: dict[str, Any]
    access: Access | None = None
    form: FormData | None = None
    fresh: bool = False  # the cookie must be (re)written on the response
    flash: list[str] = field(default_factory=list)

    @property
    def csrf(self) -> str:
        return str(self.data["csrf"])

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default


async def load(request: Request) -> Ctx:
    data = read_cookie(request)
    ctx = Ctx(request, data)
    if not isinstance(data.get("csrf"), str):
        ctx.data = {"csrf": secrets.token_urlsafe(24)}
        ctx.fresh = True
    user_id = ctx.data.get("user")
    if isinstance(user_id, int):
        async with runtime(request).sessions() as session:
            user = await session.get(User, user_id)
            if user is not None and hmac.compare_digest(str(ctx.data.get("pw", "")), password_mark(user)):
                ctx.access = await access_for(session, user_id)
    return ctx


async def access_of_websocket(conn: HTTPConnection) -> Access | None:
    data = read_cookie(conn)
    user_id = data.get("user")
    if not isinstance(user_id, int):
        return None
    async with runtime(conn).sessions() as session:
        user = await session.get(User, user_id)
        if user is None or not hmac.compare_digest(str(data.get("pw", "")), password_mark(user)):
            return None
        return await access_for(session, user_id)


async def check_csrf(ctx: Ctx) -> None:
    ctx.form = await ctx.request.form()
    sent = ctx.form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, ctx.csrf):
        raise HTTPException(403, "This form has expired or did not come from this dashboard. Reload the "
                                 "page and try again.")


def sign_in(ctx: Ctx, user: User) -> None:
    # A new CSRF token at sign-in: a token seen before signing in is worth nothing after it.
    ctx.data = {"user": user.id, "pw": password_mark(user), "csrf": secrets.token_urlsafe(24)}
    ctx.fresh = True


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def page(handler: Handler, *, owner: bool = False, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a dashboard view: sign-in required (unless public), CSRF checked on POST, owners-only if asked."""

    async def endpoint(request: Request) -> Response:
        ctx = await load(request)
        if not public and ctx.access is None:
            if request.method == "GET":
                return _keep(RedirectResponse(f"/dashboard/login?next={request.url.path}", 303), ctx)
            raise HTTPException(401, "Please sign in again.")
        if request.method == "POST":
            await check_csrf(ctx)
        if owner and (ctx.access is None or not ctx.access.is_owner):
            raise HTTPException(403, "Only an owner can do this.")
        response = await handler(request, ctx)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return _keep(response, ctx)

    return endpoint


def _keep(response: Response, ctx: Ctx) -> Response:
    if ctx.fresh:
        write_cookie(response, ctx.request, ctx.data)
    return response
