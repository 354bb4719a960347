"""The dashboard's session cookie, CSRF tokens and the headers of its pages.

The cookie (`ringback_session`: HttpOnly, SameSite=Lax, Secure over HTTPS, path /dashboard) holds only a
random token. Signed in, the token names a row of `dashboard_sessions` (dialer/accounts/sessions.py),
which holds the user and the session's CSRF token; signing out deletes the row, so a copied cookie stops
working. Before signing in, the token is anonymous: nothing is stored and its CSRF token is derived from
it (HMAC with the secret key), which is all the sign-in form needs. Signing in always issues a new token.

Every form carries the CSRF token and a POST without the right one is refused (compared as bytes in
constant time). Every page gets a fresh CSP nonce for its scripts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

from dialer.accounts import sessions
from dialer.accounts.users import Access, access_for
from dialer.db.models import User
from dialer.runtime import Runtime
from server.dashboard.inputs import refuse_bad_text

COOKIE = "ringback_session"
MAX_AGE = int(sessions.LIFETIME.total_seconds())
CSRF_FIELD = "csrf"


def runtime(conn: HTTPConnection) -> Runtime:
    return conn.app.state.runtime  # type: ignore[no-any-return]


def is_https(conn: HTTPConnection) -> bool:
    return conn.url.scheme in ("https", "wss")


def _anonymous_csrf(conn: HTTPConnection, token: str) -> str:
    key = runtime(conn).settings.secret_key.encode()
    return hmac.new(key, b"ringback.dashboard.csrf|" + token.encode(), hashlib.sha256).hexdigest()


def write_cookie(response: Response, conn: HTTPConnection, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=MAX_AGE, path="/dashboard", httponly=True, samesite="lax",
                        secure=is_https(conn))


def clear_cookie(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="lax", secure=is_https(conn))


@dataclass
class Ctx:
    """One dashboard request: who is signed in, the session's CSRF token and the parsed form."""

    request: Request
    token: str  # the cookie's token (signed in or anonymous)
    csrf: str
    access: Access | None = None
    form: FormData | None = None
    fresh: bool = False  # the cookie must be (re)written on the response
    ended: bool = False  # the cookie must be deleted
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    flash: list[str] = field(default_factory=list)

    @property
    def signed_in(self) -> bool:
        return self.access is not None

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default


async def _session_access(conn: HTTPConnection, token: str) -> tuple[Access, str] | None:
    """The access and CSRF token of the live session `token` names, if any."""
    rt = runtime(conn)
    async with rt.sessions() as session, session.begin():
        found = await sessions.find(session, token, rt.clock.now())
        if found is None:
            return None
        row, user = found
        access = await access_for(session, user.id)
        return (access, row.csrf) if access is not None else None


async def load(request: Request) -> Ctx:
    token = request.cookies.get(COOKIE, "")
    found = await _session_access(request, token) if token else None
    if found is not None:
        access, csrf = found
        return Ctx(request, token, csrf, access)
    if sessions.token_key(token) is None or len(token) < 32:
        ctx = Ctx(request, secrets.token_urlsafe(sessions.TOKEN_BYTES), "")
        ctx.fresh = True
    else:
        ctx = Ctx(request, token, "")
    ctx.csrf = _anonymous_csrf(request, ctx.token)
    return ctx


async def access_of_websocket(conn: HTTPConnection) -> Access | None:
    token = conn.cookies.get(COOKIE, "")
    found = await _session_access(conn, token) if token else None
    return found[0] if found is not None else None


def same_token(sent: object, expected: str) -> bool:
    """Constant-time, on bytes: any text (non-ASCII too) is simply a wrong token."""
    if not isinstance(sent, str):
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), expected.encode())


async def check_csrf(ctx: Ctx) -> None:
    ctx.form = await ctx.request.form()
    refuse_bad_text(ctx.form.multi_items())
    if not same_token(ctx.form.get(CSRF_FIELD), ctx.csrf):
        raise HTTPException(403, "This form has expired or did not come from this dashboard. Reload the "
                                 "page and try again.")


def signed_in(ctx: Ctx, opened: sessions.Opened) -> None:
    """The browser now holds the new session's token (a token seen before signing in is worth nothing)."""
    ctx.token, ctx.csrf, ctx.fresh, ctx.ended = opened.token, opened.row.csrf, True, False


def signed_out(ctx: Ctx) -> None:
    ctx.access, ctx.ended, ctx.fresh = None, True, False


def password_mark(user: User) -> str:
    return sessions.password_mark(user)


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def content_policy(nonce: str) -> str:
    """The dashboard's CSP: scripts only with this response's nonce, everything else from this server."""
    return "; ".join([
        "default-src 'none'",
        f"script-src 'nonce-{nonce}'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ])


def page(handler: Handler, *, owner: bool = False, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a dashboard view: sign-in required (unless public), CSRF checked on POST, owners-only if asked."""

    async def endpoint(request: Request) -> Response:
        refuse_bad_text([*request.query_params.multi_items(), *request.path_params.items()])
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
        response.headers.setdefault("Content-Security-Policy", content_policy(ctx.nonce))
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return _keep(response, ctx)

    return endpoint


def _keep(response: Response, ctx: Ctx) -> Response:
    if ctx.ended:
        clear_cookie(response, ctx.request)
    elif ctx.fresh:
        write_cookie(response, ctx.request, ctx.token)
    return response
