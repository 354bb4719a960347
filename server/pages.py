"""Static things the server hands out: the widget file, the example host pages, the health check."""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).parent / "static"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# `/widget.js` is the address site owners paste, so it must pick up a new release: browsers keep it a day
# and revalidate with the ETag. `/widget.<digest>.js` never changes, so it is cached for a year.
WIDGET_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
PINNED_CACHE = "public, max-age=31536000, immutable"

# The strict example allows nothing but its own origin: no inline script or style, no eval.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_EXAMPLE_HEADERS = {"strict-csp.html": {"Content-Security-Policy": STRICT_CSP}}
_EXAMPLE_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8"}
_EXAMPLE_NAME = re.compile(r"[a-z0-9-]+\.(html|css)")
# The cross-origin example loads the widget from the other loopback name, so the page and the server
# differ in origin on one machine with one server (localhost <-> 127.0.0.1).
_OTHER_NAME = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}


@dataclass(frozen=True)
class WidgetFile:
    raw: bytes
    gzipped: bytes
    digest: str

    @property
    def etag(self) -> str:
        # Weak: the gzip and identity encodings are the same representation for caching purposes.
        return f'W/"{self.digest}"'


@lru_cache(maxsize=1)
def widget_file() -> WidgetFile:
    raw = (STATIC / "widget.js").read_bytes()
    return WidgetFile(raw, gzip.compress(raw, 9, mtime=0), hashlib.sha256(raw).hexdigest()[:16])


def _not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match", "")
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in given.split(",")) or given.strip() == "*"


def _widget(request: Request, cache: str) -> Response:
    widget = widget_file()
    headers = {
        "ETag": widget.etag,
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if _not_modified(request, widget.etag):
        return Response(status_code=304, headers=headers)
    body = widget.raw
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = widget.gzipped, "gzip"
    return Response(body, media_type="application/javascript; charset=utf-8", headers=headers)


async def widget_js(request: Request) -> Response:
    return _widget(request, WIDGET_CACHE)


async def pinned_widget_js(request: Request) -> Response:
    if request.path_params["digest"] != widget_file().digest:
        return PlainTextResponse("No such widget build. Use /widget.js, or the digest in its ETag.", 404)
    return _widget(request, PINNED_CACHE)


def _example(name: str, request: Request) -> Response:
    page = EXAMPLES / name
    if not _EXAMPLE_NAME.fullmatch(name) or not page.is_file():
        return PlainTextResponse("No such example. The examples ship with the source tree (examples/).", 404)
    body = page.read_text(encoding="utf-8")
    if "{{WIDGET_ORIGIN}}" in body:
        host = request.url.hostname or ""
        other = _OTHER_NAME.get(host, host)
        port = f":{request.url.port}" if request.url.port else ""
        body = body.replace("{{WIDGET_ORIGIN}}", f"{request.url.scheme}://{other}{port}")
        body = body.replace("{{PAGE_ORIGIN}}", f"{request.url.scheme}://{host}{port}")
    headers = {"Cache-Control": "no-cache", **_EXAMPLE_HEADERS.get(name, {})}
    return Response(body, media_type=_EXAMPLE_TYPES[page.suffix], headers=headers)


async def example(request: Request) -> Response:
    return _example(request.path_params["name"], request)


async def demo_page(request: Request) -> Response:
    return _example("demo.html", request)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


routes = [
    Route("/widget.js", widget_js, methods=["GET", "HEAD"]),
    Route("/widget.{digest:str}.js", pinned_widget_js, methods=["GET", "HEAD"]),
    Route("/demo", demo_page, methods=["GET"]),
    Route("/examples/{name:str}", example, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
