"""Request bodies capped before anything parses them: an ASGI middleware around every route.

A body's declared `Content-Length` is checked first (a request over the cap is answered 413 before a
byte of it is read), then the bytes are counted as they stream in (a chunked body, or a length that
lies), and reading stops with a 413 at the first chunk past the cap. Multipart bodies are refused (415)
on every route but those listed in `MULTIPART`: no route takes uploads, and Starlette's parser would
spool their parts to the temporary directory before a handler could refuse them. The JSON API, Twilio's
webhooks, the dashboard's and the reschedule page's forms all take small bodies: `LIMITS` says how small.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.decode import MAX_BODY
from server.errors import error_response

KB = 1024
# Longest prefix first. Twilio's webhooks are forms of a few dozen short parameters; the dashboard's
# largest form is a site's settings (texts in a few languages).
LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/", MAX_BODY),
    ("/telephony/", 64 * KB),
    ("/dashboard/", 256 * KB),
    ("/callback/", 4 * KB),
)
DEFAULT_LIMIT = 16 * KB
MULTIPART: frozenset[str] = frozenset()  # paths that take multipart/form-data (none yet)


class TooLarge(Exception):
    """Raised inside the app's `receive` when the body passes its cap; answered 413 by the middleware."""


def limit_for(path: str, limits: Sequence[tuple[str, int]] = LIMITS) -> int:
    for prefix, limit in limits:
        if path.startswith(prefix):
            return limit
    return DEFAULT_LIMIT


def _refusal(path: str, status: int, code: str, message: str) -> Response:
    if path.startswith("/api/"):
        return error_response(status, code, message)
    return PlainTextResponse(message, status_code=status, headers={"Connection": "close"})


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = limit_for(path)
        headers = Headers(scope=scope)
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        too_large = f"The request is too large (at most {limit} bytes)."
        if kind == "multipart/form-data" and path not in MULTIPART:
            refusal = _refusal(path, 415, "unsupported_media_type", "Uploads are not taken here: send a form or JSON.")
            await refusal(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or len(length) > 18):
            await _refusal(path, 400, "bad_request", "The Content-Length header is not a number.")(scope, receive, send)
            return
        if length is not None and int(length) > limit:
            await _refusal(path, 413, "too_large", too_large)(scope, receive, send)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLarge:
            if started:  # a handler that answered before reading all of it: nothing more to say
                return
            await _refusal(path, 413, "too_large", too_large)(scope, receive, send)
