"""Big bodies are refused before they are read: a 300 MB upload to the sign-in form, 100 MB to a Twilio
webhook, a chunked body with no length, all answered 413/415 after a few kilobytes at most, and nothing
spooled to the temporary directory. Driven over a real socket to uvicorn, as an attacker would."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import starlette.formparsers

from tests.harness import LiveServer, world_for_app

pytestmark = pytest.mark.sqlite_only  # nothing reaches the database

MB = 1024 * 1024


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServer]:
    with LiveServer(world_for_app(database_url)) as server:
        yield server


@pytest.fixture
def spooled(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every temporary file Starlette's form parser opens (it spools multipart parts to disk)."""
    opened: list[object] = []
    real = starlette.formparsers.SpooledTemporaryFile

    def recording(*args: object, **kwargs: object) -> object:
        opened.append(args)
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", recording)
    return opened


def _post(live: LiveServer, path: str, headers: dict[str, str], total: int, chunked: bool = False) -> tuple[int, int]:
    """Send a POST whose body would be `total` bytes, a megabyte at a time, until the server answers.
    Returns the status and how many body bytes were sent before it did."""
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n"
        sock.sendall((head + "\r\n").encode())
        sock.setblocking(False)
        sent, chunk, answer = 0, b"a" * MB, b""
        while sent < total:
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
            try:
                sock.sendall((f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk)
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(10)
        while b"\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
        return int(answer.split(b" ", 2)[1]), sent
    finally:
        sock.close()


def test_a_300_mb_upload_to_the_sign_in_form_is_refused_unread(live: LiveServer, spooled: list[object]) -> None:
    status, sent = _post(live, "/dashboard/login", {"Content-Type": "multipart/form-data; boundary=xx"}, 300 * MB)
    assert status == 415
    assert sent <= 8 * MB  # refused at the headers: what was sent is what the socket buffers took
    assert spooled == []


def test_a_100_mb_form_to_a_twilio_webhook_is_refused_unread(live: LiveServer, spooled: list[object]) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, sent = _post(live, "/telephony/twilio/status?leg=x", form, 100 * MB)
    assert status == 413 and sent <= 8 * MB
    # No length said: counted as it comes (on a form that is read: the sign-in's, the reschedule page's).
    for path in ("/dashboard/login", "/callback/0123?sig=x"):
        status, sent = _post(live, path, form, 100 * MB, chunked=True)
        assert status == 413 and sent <= 8 * MB
    multipart = {"Content-Type": "multipart/form-data; boundary=xx"}
    assert _post(live, "/telephony/twilio/status?leg=x", multipart, 100 * MB)[0] == 415
    assert spooled == []


def test_a_chunked_json_body_past_the_cap_is_refused(live: LiveServer) -> None:
    status, sent = _post(live, "/api/v1/callbacks", {"Content-Type": "application/json"}, 50 * MB, chunked=True)
    assert status == 413 and sent <= 8 * MB


def test_small_bodies_still_go_through(client_world: tuple[object, object]) -> None:
    client, _ = client_world
    response = client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234567"})  # type: ignore[attr-defined]
    assert response.status_code == 201
    bad = client.post("/dashboard/login", content=b"x", headers={"Content-Length": "12abc"})  # type: ignore[attr-defined]
    assert bad.status_code == 400
