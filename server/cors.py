"""CORS for the widget's API: the widget always runs on another origin than this server, so every answer
of `/api/…` — errors (400, 404, 409, 422, 429, 503) and preflights included — must carry
`Access-Control-Allow-Origin`, or the browser hides it and the visitor reads "could not reach the server"
instead of what to correct.

Which origin is allowed: once a handler knows the site (`note_site`), an origin the site does not list is
given no CORS headers at all (the browser then shows that page nothing; the request itself is refused
with `403 origin_not_allowed` by the screen). Before the site is known (a body that is not JSON, an
unknown site key, a preflight, a lead's status by its token), the page's origin is echoed: the site key
is public and nothing secret is behind these answers.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialer.core.site_config import SiteConfig

API_PREFIX = "/api/"
_SITE_ORIGINS = "ringback.site_origins"  # scope key: the origins of the site the request is for
METHODS = "GET, POST, DELETE, OPTIONS"
MAX_AGE = "600"
EXPOSED = "Retry-After"  # the widget may read how long to wait after a 429 or a 503


def note_site(request: Request, site: SiteConfig) -> None:
    """The request is for `site`: its allowed origins decide the CORS headers of whatever is answered."""
    request.scope[_SITE_ORIGINS] = site.origins


def allowed_origin(scope: Scope) -> str | None:
    """The origin to allow in the answer to this request, or None for no CORS headers."""
    origin = Headers(scope=scope).get("origin")
    if not origin:
        return None
    origins: tuple[str, ...] = scope.get(_SITE_ORIGINS, ())
    if origins and origin.rstrip("/") not in origins:
        return None
    return origin


def _add(headers: MutableHeaders, origin: str | None) -> None:
    headers.add_vary_header("Origin")
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSED


def preflight(scope: Scope) -> Response:
    """The browser asks before a POST with a JSON body or a DELETE: say what the API accepts."""
    response = Response(status_code=204, headers={"Access-Control-Max-Age": MAX_AGE})
    asked = Headers(scope=scope).get("access-control-request-headers")
    response.headers["Access-Control-Allow-Methods"] = METHODS
    response.headers["Access-Control-Allow-Headers"] = asked if asked and len(asked) <= 200 else "Content-Type"
    _add(response.headers, allowed_origin(scope))
    return response


class ApiCors:
    """ASGI middleware: answers preflights under `/api/` and adds CORS headers to every other answer
    there, including the ones made by the exception handlers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await preflight(scope)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add(MutableHeaders(scope=message), allowed_origin(scope))
            await send(message)

        await self.app(scope, receive, send_with_cors)
