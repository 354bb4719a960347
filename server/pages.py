"""Static things the server hands out: the widget file, the demo host page, the health check."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).parent / "static"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@lru_cache(maxsize=1)
def widget_file() -> tuple[bytes, str]:
    data = (STATIC / "widget.js").read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


async def widget_js(request: Request) -> Response:
    data, etag = widget_file()
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=3600, stale-while-revalidate=86400",
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/javascript; charset=utf-8", headers=headers)


async def demo_page(request: Request) -> Response:
    page = EXAMPLES / "demo.html"
    if not page.is_file():
        return PlainTextResponse("The demo page ships with the source tree (examples/demo.html).", 404)
    return FileResponse(page, media_type="text/html; charset=utf-8")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


routes = [
    Route("/widget.js", widget_js, methods=["GET", "HEAD"]),
    Route("/demo", demo_page, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
