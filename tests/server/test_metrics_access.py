"""Who may read `/metrics`: with RINGBACK_METRICS_TOKEN, whoever sends it as a bearer token (401 with a
challenge otherwise); without it, this machine only (403 otherwise, and a request a proxy forwarded is not
from this machine). No header a scraper sends gives a 500, and the token is never logged."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
import uvicorn
from starlette.testclient import TestClient

from dialer import logs
from dialer.config import ConfigError, Settings
from server.app import create_app
from tests.harness import ThreadedServer, build_runtime, listening_socket

pytestmark = pytest.mark.sqlite_only  # who is let in does not depend on the database

TOKEN = "Mx7-q2Rk9_vLw4ZtB1nYc8sHd3fJp6eA"  # 32 characters of base64url: 192 bits
LOCAL = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)  # TEST-NET-3: an address on the internet
SCRAPED = "ringback_hunt_steps_total"  # a line every scrape shows
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prometheus" / "prometheus.yml"


@contextmanager
def scraper(url: str, peer: tuple[str, int], token: str | None = None) -> Iterator[TestClient]:
    runtime = build_runtime(url, metrics_token=token)
    with TestClient(create_app(runtime=runtime, run_engine=False), client=peer) as client:
        try:
            yield client
        finally:
            client.portal.call(runtime.close)  # type: ignore[union-attr]


def test_without_a_token_only_this_machine_is_answered(sqlite_url: str) -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        with scraper(sqlite_url, (host, 40000)) as client:
            response = client.get("/metrics")
            assert response.status_code == 200, host
            assert SCRAPED in response.text
    for host in ("203.0.113.9", "10.0.0.5", "::ffff:203.0.113.9", "2001:db8::1", "testclient"):
        with scraper(sqlite_url, (host, 40000)) as client:
            refused = client.get("/metrics")
            assert refused.status_code == 403, host
            assert SCRAPED not in refused.text
            assert "RINGBACK_METRICS_TOKEN" in refused.json()["error"]["message"]


def test_without_a_token_a_request_forwarded_by_a_proxy_on_this_machine_is_refused(sqlite_url: str) -> None:
    # A reverse proxy on the same machine connects from 127.0.0.1 whoever asked it.
    with scraper(sqlite_url, LOCAL) as client:
        for header, value in (("X-Forwarded-For", "203.0.113.9"), ("Forwarded", "for=203.0.113.9"),
                              ("X-Real-IP", "203.0.113.9"), ("X-Forwarded-For", "127.0.0.1")):
            response = client.get("/metrics", headers={header: value})
            assert response.status_code == 403, header
            assert SCRAPED not in response.text
        assert client.get("/metrics").status_code == 200


def test_with_a_token_a_scrape_needs_it_from_anywhere(sqlite_url: str) -> None:
    for peer in (REMOTE, LOCAL):
        with scraper(sqlite_url, peer, TOKEN) as client:
            response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status_code == 200 and SCRAPED in response.text
            assert response.headers["content-type"].startswith("text/plain")
            # The scheme is case-insensitive (RFC 7235 section 2.1); proxies forwarding are no concern here.
            assert client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}",
                                                   "X-Forwarded-For": "198.51.100.7"}).status_code == 200
            missing = client.get("/metrics")  # this machine too: the token, once set, is the rule
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == 'Bearer realm="ringback metrics"'
            assert SCRAPED not in missing.text and TOKEN not in missing.text


def test_a_wrong_token_is_refused_with_a_challenge_and_never_a_500(sqlite_url: str) -> None:
    wrong = [
        f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Bearer {TOKEN.lower()}", f"Basic {TOKEN}", TOKEN,
        f"Token {TOKEN}", "Bearer", "Bearer ", "Bearer  ", f"Bearer{TOKEN}", "", "Bearer " + "A" * 8000,
        f"Bearer {TOKEN} {TOKEN}",
    ]
    with scraper(sqlite_url, REMOTE, TOKEN) as client:
        for value in wrong:
            response = client.get("/metrics", headers={"Authorization": value})
            assert response.status_code == 401, value
            assert response.headers["www-authenticate"].startswith('Bearer realm="ringback metrics"')
            assert SCRAPED not in response.text and TOKEN not in response.text
        sent_wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert sent_wrong.headers["www-authenticate"] == 'Bearer realm="ringback metrics", error="invalid_token"'
        # Bytes that are no ASCII (a header is Latin-1 on the wire) are simply not the token.
        for raw in ("Bearer é".encode(), b"Bearer \xff\xfe", "Bearer ƒ".encode() + TOKEN.encode()):
            assert client.get("/metrics", headers={"Authorization": raw}).status_code == 401  # type: ignore[dict-item]
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_a_token_that_could_not_be_sent_or_guessed_is_refused_at_start() -> None:
    for bad in ("short-token", "a" * 40, f"{TOKEN} {TOKEN}", f"{TOKEN}é"):
        with pytest.raises(ConfigError, match="RINGBACK_METRICS_TOKEN"):
            Settings.from_env({"RINGBACK_METRICS_TOKEN": bad}, demo=True).check()
    assert Settings.from_env({"RINGBACK_METRICS_TOKEN": ""}, demo=True).metrics_token is None  # empty is unset
    settings = Settings.from_env({"RINGBACK_METRICS_TOKEN": TOKEN}, demo=True)
    settings.check()
    assert settings.metrics_token == TOKEN and TOKEN not in repr(settings)
    assert TOKEN in settings.secrets  # the log handler replaces it wherever it would appear


def test_the_token_is_never_logged(sqlite_url: str) -> None:
    """Served by uvicorn, access log included, as `ringback serve` logs: neither the token nor a wrong
    one a scraper sent is in any line (caught without redaction, so nothing hides a leak)."""
    stream = io.StringIO()
    handler = logs.make_handler("text", stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    runtime = build_runtime(sqlite_url, metrics_token=TOKEN)
    app = create_app(runtime=runtime, run_engine=False)
    server = ThreadedServer(app, listening_socket(), on_shutdown=runtime.close, lifespan="on")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # set aside the harness's own handlers
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    server.server = uvicorn.Server(uvicorn.Config(app, log_level="debug", lifespan="on", log_config=None))
    near_miss = TOKEN[:-1] + "Z"
    try:
        with server:
            url = f"{server.url}/metrics"
            assert httpx2.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
            assert httpx2.get(url, headers={"Authorization": f"Bearer {near_miss}"}).status_code == 401
            assert httpx2.get(url, params={"token": TOKEN}).status_code == 401  # not how it is sent, and
            # the access log shows that query as token=***
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = stream.getvalue()
    assert "GET /metrics HTTP/1.1" in text, "the access log was not captured"
    assert TOKEN not in text
    assert near_miss not in text


def test_the_prometheus_example_sends_the_token_as_a_bearer_token_from_a_file() -> None:
    lines = [line.strip() for line in EXAMPLE.read_text().splitlines() if not line.lstrip().startswith("#")]
    assert "metrics_path: /metrics" in lines
    at = lines.index("authorization:")
    assert lines[at + 1:at + 3] == ["type: Bearer", "credentials_file: /etc/prometheus/ringback-token"]
