"""Bots and foreign pages: the signed form token, the honeypot, a CAPTCHA hook and the site's origins.

Each refusal is a 4xx naming the field and writes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from dialer.protection import form_token, screen
from tests.server.test_abuse_support import AbuseApi, abuse_api

# The token, honeypot, CAPTCHA and origin checks come before anything is written: the database does not
# change them (intake writes are tried on both databases in test_api, test_abuse_input and test_fuzz).
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def api(database_url: str) -> Iterator[AbuseApi]:
    with abuse_api(database_url) as api:
        yield api


def refused(response, status: int, field: str | None, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.get("field") == field and error["message"]
    if code:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


def test_the_config_call_hands_out_a_signed_token_and_the_minimum_fill_time(api: AbuseApi) -> None:
    config = api.config()
    assert config["min_fill_seconds"] == 3
    assert config["form_token"] and config["form_token"] != api.config()["form_token"]


def test_a_request_without_the_token_is_refused(api: AbuseApi) -> None:
    refused(api.post(), 422, "form_token", "required")
    assert api.nothing_written(events=0)


def test_a_request_sooner_than_a_person_can_fill_the_form_is_refused(api: AbuseApi) -> None:
    token = api.config()["form_token"]
    api.advance(1)
    refused(api.post(token=token), 422, "form_token", "too_fast")
    assert api.nothing_written(events=0)
    api.advance(3)
    created = api.post(token=token)
    assert created.status_code == 201, created.text
    assert api.count() == 1


def test_a_token_for_another_site_forged_or_stale_is_refused(api: AbuseApi) -> None:
    secret = api.world.runtime.settings.secret_key
    now = api.world.clock.now()
    other = form_token.issue(secret, "other-site", now)
    forged = form_token.issue("not-our-secret", "shop", now)
    api.advance(10)
    refused(api.post(token=other), 422, "form_token", "invalid")
    refused(api.post(token=forged), 422, "form_token", "invalid")
    refused(api.post(token="1." + "x" * 300), 422, "form_token", "invalid")
    stale = api.token()
    api.advance(6 * 3600 + 1)
    refused(api.post(token=stale), 422, "form_token", "expired")
    assert api.nothing_written(events=0)


def test_an_owner_can_turn_the_token_off_or_ask_for_more_time(api: AbuseApi) -> None:
    api.settings(min_fill_seconds=20)
    token = api.config()["form_token"]
    api.advance(10)
    refused(api.post(token=token), 422, "form_token", "too_fast")
    api.settings(form_token=False)
    assert "form_token" not in api.config()
    assert api.post().status_code == 201


def test_a_filled_honeypot_is_refused(api: AbuseApi) -> None:
    token = api.token()
    refused(api.post(token=token, hp="http://spam.example"), 422, "hp", "bot_suspected")
    assert api.nothing_written(events=0)
    assert api.post(token=token, hp="").status_code == 201  # the widget sends "" or nothing for people


def test_requests_from_pages_outside_the_sites_origins_are_refused(api: AbuseApi) -> None:
    api.site(origins=["https://shop.example"])
    token = api.token()
    refused(api.post(token=token, origin="https://evil.example"), 403, "site", "origin_not_allowed")
    refused(api.post(token=token, origin="https://shop.example.evil.example"), 403, "site")
    assert api.nothing_written(events=0)
    ok = api.post(token=token, origin="https://shop.example")
    assert ok.status_code == 201 and ok.headers["access-control-allow-origin"] == "https://shop.example"


@pytest.fixture
def answers() -> Iterator[set[str]]:
    good: set[str] = set()

    async def check(answer: str, ip: str | None) -> bool:
        return answer in good and ip is not None

    screen.register_captcha("test-captcha", check)
    yield good
    screen.CAPTCHA_HOOKS.pop("test-captcha")


def test_a_site_can_ask_for_a_captcha_checked_by_a_hook(api: AbuseApi, answers: set[str]) -> None:
    answers.add("solved-1")
    api.settings(captcha={"hook": "test-captcha"})
    token = api.token()
    refused(api.post(token=token), 422, "captcha", "required")
    refused(api.post(token=token, captcha="guessed"), 422, "captcha", "captcha_failed")
    assert api.nothing_written(events=0)
    assert api.post(token=token, captcha="solved-1").status_code == 201


class _SiteVerify(BaseHTTPRequestHandler):
    """A stand-in for a CAPTCHA provider's siteverify endpoint."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
        ok = form.get("secret") == ["s3cret"] and form.get("response") == ["human"] and "remoteip" in form
        body = json.dumps({"success": ok}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def siteverify() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _SiteVerify)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/siteverify"
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_siteverify_check_asks_the_provider_with_the_secret_from_the_environment(
    api: AbuseApi, siteverify: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_CAPTCHA_SECRET", "s3cret")
    api.settings(captcha={"verify_url": siteverify, "secret_env": "SHOP_CAPTCHA_SECRET"})
    token = api.token()
    refused(api.post(token=token, captcha="robot"), 422, "captcha", "captcha_failed")
    assert api.post(token=token, captcha="human").status_code == 201


def test_an_unreachable_captcha_provider_asks_the_visitor_to_retry(
    api: AbuseApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RINGBACK_CAPTCHA_SECRET", "s3cret")
    api.settings(captcha={"verify_url": "http://127.0.0.1:9/siteverify"})  # nothing listens on port 9
    response = api.post(token=api.token(), captcha="human")
    refused(response, 503, "captcha", "unavailable")
    assert int(response.headers["retry-after"]) > 0
    assert api.nothing_written(events=0)


def test_a_form_token_is_good_for_one_request_only(api: AbuseApi) -> None:
    """Replaying the token of a form that was sent (a bot that loaded the config once) is refused; a
    refused request (a field to correct) does not spend it."""
    token = api.token()
    refused(api.post(token=token, phone="12"), 422, "phone")  # a typo: the token is not spent
    assert api.post(token=token).status_code == 201
    again = api.post(token=token, phone="+48501234568", ip="198.51.100.99")
    refused(again, 429, "form_token", "form_token_used")
    assert api.count() == 1
    assert api.post(token=api.token(), phone="+48501234568", ip="198.51.100.99").status_code == 201


@pytest.mark.parametrize("token", ["1.x.é", "²³.x.y", "1.é.x", "9" * 12 + ".a.b"])
def test_a_form_token_of_any_text_is_a_422(api: AbuseApi, token: str) -> None:
    refused(api.post(token=token), 422, "form_token", "invalid")
