"""The widget on a real site: the shop's page is served by one server, Ringback by another on another port,
as on every real site. Every refusal a visitor can meet reaches the widget (the API's errors carry CORS
headers) and is shown as the server's sentence, never as "could not reach the server"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

import server.api
from server.pages import EXAMPLES
from tests.harness import ThreadedServer, listening_socket
from tests.widget.conftest import LiveServer, shadow

pytestmark = pytest.mark.browser


def shop_app(widget_origin: str) -> Starlette:
    """The shop's own web server: it serves the page that embeds the widget, nothing else."""

    async def page(request: Request) -> HTMLResponse:
        text = (EXAMPLES / "cross-origin.html").read_text(encoding="utf-8")
        own = f"{request.url.scheme}://{request.url.netloc}"
        return HTMLResponse(text.replace("{{WIDGET_ORIGIN}}", widget_origin).replace("{{PAGE_ORIGIN}}", own))

    return Starlette(routes=[Route("/", page)])


@pytest.fixture
def shop(live: LiveServer) -> Iterator[str]:
    with ThreadedServer(shop_app(live.url), listening_socket()) as served:
        yield served.url


def _send(page: Any, phone: str) -> None:
    page.get_by_label("Your phone number").fill(phone)
    page.get_by_role("button", name="Call me now").click()


def test_every_refusal_reaches_the_visitor_on_another_origin(
    live: LiveServer, shop: str, visitor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shop.rsplit(":", 1)[1] != str(live.port)  # two servers, two origins
    live.update_site(origins=[shop], any_country=False, country="US",
                     settings={"abuse": {"form_token": False, "countries": ["US"],
                                         "rate_limits": {"ip": None, "visitor": {"limit": 1, "window": 3600}}}})
    profile = visitor()
    page = profile.page()
    page.goto(shop + "/")
    page.get_by_role("button", name="Call me back").click()
    phone_error = shadow(page, "#rb-phone-e")
    general = shadow(page, "form [role=alert]")

    _send(page, "12")  # mistyped
    expect(phone_error).to_have_text("This phone number is not valid. Check the digits, or add the country code (e.g. +44).")
    _send(page, "+48 501 234 567")  # a country the site does not call
    expect(phone_error).to_have_text("Sorry, we can only call numbers from the United States.")

    real = server.api.write

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT …", {}, ConnectionRefusedError(111, "Connect call failed"))

    monkeypatch.setattr(server.api, "write", lost)  # the database away: 503
    _send(page, "(202) 555-0143")
    expect(general).to_have_text("We could not take your request just now. Please try again in a minute.")
    monkeypatch.setattr(server.api, "write", real)
    page.get_by_role("button", name="Call me now").click()
    expect(shadow(page, "form")).to_be_hidden()
    assert len(live.leads()) == 1

    again = profile.page()  # the same visitor, another tab: the same number again
    again.goto(shop + "/")
    again.get_by_role("button", name="Call me back").click()
    _send(again, "(202) 555-0143")
    expect(shadow(again, "#rb-phone-e")).to_have_text(
        "We are already handling a request for this number. Please wait until it is over.")
    _send(again, "(202) 555-0144")  # another number, but this browser has used up its requests
    expect(shadow(again, "form [role=alert]")).to_have_text(
        "Too many requests from this browser. Please try again later.")
    assert len(live.leads()) == 1
    shown = [t.lower() for t in (phone_error.text_content() or "", general.text_content() or "")]
    assert not any("could not reach" in t for t in shown)
    assert not [m for m in profile.console if "CORS" in m], profile.console
