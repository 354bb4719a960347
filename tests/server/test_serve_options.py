"""`ringback serve` under uvicorn as it configures it: X-Forwarded-For believed only when the operator
says so (and only from the proxy they name), and access logs without the secrets in lead and
reschedule links."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import uvicorn

from server.cli import parser, uvicorn_config
from tests.harness import listening_socket, url_of


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that answers with the client address and scheme uvicorn handed it."""
    if scope["type"] != "http":
        return
    body = f"{scope['client'][0]} {scope['scheme']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def served(handler: logging.Handler | None = None, **options: Any) -> Iterator[str]:
    sock = listening_socket()
    config = uvicorn_config(echo, "127.0.0.1", 0, **options)  # sets uvicorn's logging up, as `serve` does
    config.lifespan = "off"
    for name in ("uvicorn.access", "uvicorn.error") if handler else ():
        logging.getLogger(name).addHandler(handler)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        for name in ("uvicorn.access", "uvicorn.error") if handler else ():
            logging.getLogger(name).removeHandler(handler)  # type: ignore[arg-type]


FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def test_forwarded_headers_are_not_believed_by_default_even_from_loopback() -> None:
    with served() as url:
        assert requests.get(url, headers=FORGED, timeout=10).text == "127.0.0.1 http"


def test_behind_a_named_proxy_they_are() -> None:
    with served(proxy_headers=True, forwarded_allow_ips="127.0.0.1") as url:
        assert requests.get(url, headers=FORGED, timeout=10).text == "203.0.113.9 https"
    with served(proxy_headers=True, forwarded_allow_ips="192.0.2.1") as url:  # another proxy than this one
        assert requests.get(url, headers=FORGED, timeout=10).text == "127.0.0.1 http"


def test_the_options_exist_and_are_off_by_default() -> None:
    args = parser().parse_args(["serve"])
    assert args.proxy_headers is False and args.forwarded_allow_ips is None
    args = parser().parse_args(["serve", "--proxy-headers", "--forwarded-allow-ips", "10.0.0.1,10.0.0.2"])
    assert args.proxy_headers and args.forwarded_allow_ips == "10.0.0.1,10.0.0.2"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_access_logs_hide_lead_tokens_and_reschedule_signatures() -> None:
    lines = _Lines()
    with served(lines) as url:
        for path in ("/api/v1/callbacks/abc123?token=SECRET-TOKEN", "/api/v1/callbacks/abc123/live?token=SECRET-LIVE",
                     "/callback/abc123?sig=SECRET-SIG", "/api/v1/sites/shop/config?lang=pl"):
            requests.get(url + path, timeout=10)
    text = "\n".join(lines.lines)
    assert "/api/v1/callbacks/abc123?…" in text and "/callback/abc123?…" in text
    assert "SECRET" not in text
    assert "/api/v1/sites/shop/config?lang=pl" in text  # other queries are kept: they hold nothing secret
