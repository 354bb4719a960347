"""Security headers on every HTTP answer (pages, API, webhooks, errors): nothing of Ringback may be framed
by another site (`frame-ancestors 'none'` and `X-Frame-Options: DENY`, e.g. /callback/{id}, where a
visitor picks a time), browsers must not guess content types, and when the public URL is https,
browsers are told to use https only (HSTS).

A response that sets its own Content-Security-Policy (the dashboard's nonce-based one, which has
`frame-ancestors 'none'` too; the strict-CSP example page) keeps it as it is; X-Frame-Options still
refuses framing there.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NO_FRAMING = "frame-ancestors 'none'"
HSTS = "max-age=31536000"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", NO_FRAMING)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
