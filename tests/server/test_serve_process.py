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
