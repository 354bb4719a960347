"""`ringback serve` as a real process on PostgreSQL: it takes its address from `--host/--port` (and makes
that the public URL unless RINGBACK_PUBLIC_URL says otherwise), sends `/` to the dashboard, and a Ctrl-C
or SIGTERM ends it quietly with exit status 0."""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import signal
from pathlib import Path

import pytest

from tests.scale.cluster import Process, free_port


def _ask(port: int, method: str, path: str, body: object = None) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        return answer.status, answer.getheader("location")
    finally:
        connection.close()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
async def test_serve_stops_quietly_with_exit_status_0(postgresql_url: str, tmp_path: Path, stop: int) -> None:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "RINGBACK_DATABASE_URL": postgresql_url,
           "RINGBACK_SECRET_KEY": secrets.token_urlsafe(32)}
    server = Process("serve", ["serve", "--port", str(port)], env, tmp_path)
    await server.start("Uvicorn running on", timeout=60)
    try:
        status, location = await asyncio.to_thread(_ask, port, "GET", "/")
        assert (status, location) == (307, "/dashboard")  # not the demo page
        status, _ = await asyncio.to_thread(_ask, port, "POST", "/api/v1/callbacks", {"site": "none", "phone": "1"})
        assert status == 404  # the database was asked: its connections are open when the stop comes
    finally:
        assert server._proc is not None
        server._proc.send_signal(stop)
        code = await server.wait(30)
    log = "\n".join(server.lines)
    assert code == 0, log
    assert "Traceback" not in log and "Error" not in log, log


async def test_the_demo_on_another_port_says_its_real_address(tmp_path: Path) -> None:
    """`make run PORT=…` runs `ringback demo --port …`: the banner, the widget tag and the public URL
    (the dashboard's embed snippets, links in text messages) follow the address it listens on."""
    port = free_port()
    demo = Process("demo", ["demo", "--port", str(port)], {"PATH": "/usr/bin:/bin"}, tmp_path)
    await demo.start("Uvicorn running on", timeout=60)
    try:
        banner = "\n".join(demo.lines)
        assert f"Open http://127.0.0.1:{port}/demo" in banner
        assert f'<script async src="http://127.0.0.1:{port}/widget.js" data-site="demo"></script>' in banner
        assert f"Dashboard: http://127.0.0.1:{port}/dashboard" in banner and "ringback user add" in banner
        assert await asyncio.to_thread(_ask, port, "GET", "/") == (307, "/demo")
    finally:
        assert await demo.stop(30) == 0


@pytest.mark.sqlite_only
def test_the_public_url_follows_the_address_unless_it_is_set() -> None:
    from dialer.config import Settings

    assert Settings.from_env({}).served_at("127.0.0.1", 8080).public_url == "http://127.0.0.1:8080"
    assert Settings.from_env({}).served_at("0.0.0.0", 9000).public_url == "http://127.0.0.1:9000"
    given = Settings.from_env({"RINGBACK_PUBLIC_URL": "https://calls.example/"}).served_at("0.0.0.0", 9000)
    assert given.public_url == "https://calls.example"
