"""The WebSockets only tell the browser things: a message from it of more than MAX_CLIENT_MESSAGE bytes
closes the socket with 1009 (message too big), under `serve`'s uvicorn before the app even buffers it;
small ones, text or bytes, are ignored; the server goes on serving everyone else. (The dashboard's socket: tests/server/dashboard/test_hardening.py.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
import websockets
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from server.app import create_app
from server.cli import uvicorn_config
from server.live import MAX_CLIENT_MESSAGE, MESSAGE_TOO_BIG
from tests.harness import ThreadedServer, app_client, listening_socket, world_for_app

pytestmark = pytest.mark.sqlite_only  # sockets and message sizes do not depend on the database

TOO_BIG = "x" * (MAX_CLIENT_MESSAGE + 1)


def _lead(client: TestClient) -> dict[str, Any]:
    created = client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234567",
                                                     "timezone": "Europe/Warsaw"})
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def closed_with(ws: Any) -> int | None:
    """The code the app closed `ws` with, or None for a message instead; a test whose app sends nothing
    fails after 10 s rather than hang (TestClient's own receive waits for ever)."""

    async def receive() -> Any:
        with anyio.fail_after(10):
            return await ws._send_rx.receive()

    message = ws.portal.call(receive)
    return message["code"] if message["type"] == "websocket.close" else None


def _live(lead: dict[str, Any]) -> str:
    return f"/api/v1/callbacks/{lead['id']}/live?token={lead['token']}"


def test_a_too_large_message_closes_the_visitors_socket_and_nothing_else(database_url: str) -> None:
    with app_client(database_url, run_engine=False) as (client, _):  # no engine: the lead stays queued
        lead = _lead(client)
        for too_big in (TOO_BIG, TOO_BIG.encode(), "é" * (MAX_CLIENT_MESSAGE // 2 + 1)):  # bytes are counted
            with client.websocket_connect(_live(lead)) as ws:
                assert ws.receive_json()["status"] == "queued"
                if isinstance(too_big, bytes):
                    ws.send_bytes(too_big)
                else:
                    ws.send_text(too_big)
                assert closed_with(ws) == MESSAGE_TOO_BIG
        # Small messages, text or bytes, are ignored: the socket still tells the visitor what happens.
        with client.websocket_connect(_live(lead)) as ws:
            assert ws.receive_json()["status"] == "queued"
            ws.send_text("x" * MAX_CLIENT_MESSAGE)
            ws.send_bytes(b"\x00\xff" * 10)
            assert client.delete(f"/api/v1/callbacks/{lead['id']}", params={"token": lead["token"]}).status_code == 200
            assert ws.receive_json()["status"] == "cancelled"
        assert client.get("/healthz").status_code == 200


class _Received:
    """Middleware noting the size of each WebSocket message the app is handed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.sizes = app, list[int]()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def noted() -> Any:
            message = await receive()
            if message["type"] == "websocket.receive":
                self.sizes.append(len(message.get("bytes") or message.get("text") or ""))
            return message

        await self.app(scope, noted if scope["type"] == "websocket" else receive, send)


def test_serve_refuses_a_large_message_before_the_app_buffers_it(database_url: str) -> None:
    world = world_for_app(database_url)
    app = _Received(create_app(runtime=world.runtime, run_engine=False))
    server = ThreadedServer(app, listening_socket(), on_shutdown=world.runtime.close, lifespan="on")
    config = uvicorn_config(app, "127.0.0.1", 0)  # as `ringback serve` configures uvicorn
    config.log_level = "warning"
    server.server = uvicorn.Server(config)
    ws_url = server.url.replace("http", "ws")

    async def visit(lead: dict[str, Any], message: str) -> int | None:
        async with websockets.connect(ws_url + _live(lead), open_timeout=10, max_size=None) as ws:
            assert json.loads(await ws.recv())["status"] == "queued"
            await ws.send(message)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            return None

    with server:
        created = httpx2.post(f"{server.url}/api/v1/callbacks",
                              json={"site": "shop", "phone": "+48501234567", "timezone": "Europe/Warsaw"})
        assert created.status_code == 201, created.text
        lead = created.json()
        assert asyncio.run(visit(lead, "x" * 1024 * 1024)) == MESSAGE_TOO_BIG  # a megabyte
        assert app.sizes == []  # uvicorn refused it: the app never held it
        assert asyncio.run(visit(lead, TOO_BIG)) == MESSAGE_TOO_BIG
        assert httpx2.get(f"{server.url}/healthz").status_code == 200
        assert httpx2.get(f"{server.url}{_live(lead).replace('/live', '')}").json()["status"] == "queued"
