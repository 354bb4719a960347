"""Requests straight into the app's ASGI interface from its own event loop: many at once (asyncio.gather),
each from the client address a test names. (The TestClient sends one at a time, all from one address.)"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message

from server.dashboard.session import COOKIE


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Browser:
    """One browser at address `ip`: it keeps the dashboard's cookie between requests."""

    app: ASGIApp
    ip: str
    cookie: str | None = None
    sent: list[str] = field(default_factory=list)

    async def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Answer:
        body = urlencode(form).encode() if form is not None else b""
        headers = [(b"host", b"testserver")]
        if form is not None:
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
        if self.cookie:
            headers.append((b"cookie", f"{COOKIE}={self.cookie}".encode()))
        path, _, query = path.partition("?")
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": headers, "client": (self.ip, 40000), "server": ("testserver", 80),
        }
        chunks: list[bytes] = []
        start: dict[str, Any] = {}
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        answer = Answer(start["status"], {}, b"".join(chunks))
        for name, value in start.get("headers", []):
            answer.headers[name.decode().lower()] = value.decode()
            if name.lower() == b"set-cookie":
                jar: SimpleCookie = SimpleCookie(value.decode())
                if COOKIE in jar:
                    self.cookie = jar[COOKIE].value or None
        return answer

    async def csrf(self, path: str = "/dashboard/login") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', (await self.request("GET", path)).text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    async def login(self, email: str, password: str, csrf: str | None = None) -> int:
        token = csrf or await self.csrf()
        answer = await self.request("POST", "/dashboard/login", {"email": email, "password": password, "csrf": token})
        return answer.status
