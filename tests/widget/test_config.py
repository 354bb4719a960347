"""What the widget is told about a site (`GET /api/v1/sites/{key}/config`), how the widget file and the
example pages are served, and which visit facts a request may carry."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from dialer.db.models import Lead, Site
from server.pages import STRICT_CSP, widget_file
from server.widget_config import contrast
from server.widget_texts import TEXTS
from tests.harness import World, client_for


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, World]]:
    yield from client_for(database_url, run_engine=False)  # site "shop", country PL


def configure(client: TestClient, world: World, **columns: Any) -> None:
    async def go() -> None:
        async with world.runtime.sessions() as session, session.begin():
            site = (await session.execute(select(Site).where(Site.key == "shop"))).scalar_one()
            for name, value in columns.items():
                setattr(site, name, value)

    client.portal.call(go)  # type: ignore[union-attr]


def config(client: TestClient, lang: str = "en-US", **headers: str) -> dict[str, Any]:
    response = client.get("/api/v1/sites/shop/config", params={"lang": lang}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_every_language_says_everything_english_does() -> None:
    assert set(TEXTS) >= {"en", "pl", "ru", "de"}
    for lang, texts in TEXTS.items():
        assert texts.keys() == TEXTS["en"].keys(), lang
        for key, text in texts.items():
            assert re.findall(r"\{\w+\}", text) == re.findall(r"\{\w+\}", TEXTS["en"][key]), (lang, key)


@pytest.mark.sqlite_only
def test_polite_defaults_in_the_visitors_language(api: tuple[TestClient, World]) -> None:
    client, _ = api
    body = config(client, "de-AT")
    assert body["language"] == "de" and body["dir"] == "ltr"
    assert body["texts"]["button"] == "Rückruf anfordern"
    assert body["position"] == "bottom-right"
    assert body["triggers"] == {"after_seconds": None, "exit_intent": False, "cap_hours": 168}
    assert body["exclude"] == [] and body["hide_on"] == []
    assert body["phone_example"] == "512 345 678"  # the site's country is PL
    assert body["call_now"] is True and len(body["slots"]) == 12  # the next free half hours, too
    assert contrast(body["colors"]["accent"], body["colors"]["accent_text"]) >= 4.5
    assert contrast(body["colors"]["panel"], body["colors"]["text"]) >= 4.5
    # A language the widget does not speak: the site's country decides, then English.
    assert config(client, "fr-FR")["language"] == "pl"
    assert config(client, "")["texts"]["button"] == "Zadzwońcie do mnie"


@pytest.mark.sqlite_only
def test_the_site_owner_sets_wording_colours_corner_and_triggers(api: tuple[TestClient, World]) -> None:
    client, world = api
    configure(client, world, consent_required=True, consent_text="I agree to a call from Shop.", settings={
        "language": "ru",
        "texts": {"button": "Позвоните мне!", "ru": {"title": "Перезвоним за минуту"}, "de": {"title": "x"},
                  "nonsense": "ignored"},
        "colors": {"accent": "#ffd400", "panel": "#000000", "text": "#111111", "accent_text": "#ffffff"},
        "position": "bottom-left",
        "triggers": {"after_seconds": 99999, "exit_intent": True, "cap_hours": 0},
        "exclude": ["/checkout*", "/cart"],
        "hide_on": ["/admin/*"],
    })
    body = config(client, "en-US")
    assert body["language"] == "ru"  # fixed by the site, whatever the browser says
    assert body["texts"]["button"] == "Позвоните мне!" and body["texts"]["title"] == "Перезвоним за минуту"
    assert "nonsense" not in body["texts"]
    assert body["texts"]["consent"] == "I agree to a call from Shop." and body["consent_required"] is True
    assert body["position"] == "bottom-left"
    # White on yellow and near-black on black fail AA: replaced by readable ones.
    assert body["colors"]["accent"] == "#ffd400" and body["colors"]["accent_text"] == "#111111"
    assert body["colors"]["text"] == "#ffffff"
    assert body["triggers"] == {"after_seconds": 3600, "exit_intent": True, "cap_hours": 1}
    checkout, cart = (re.compile(p) for p in body["exclude"])
    assert checkout.match("/checkout/step-2") and not checkout.match("/shop/checkout")
    assert cart.match("/cart") and not cart.match("/cart/items")
    assert re.compile(body["hide_on"][0]).match("/admin/users")


@pytest.mark.parametrize("settings", [
    {"colors": {"accent": "red; background: url(x)"}, "position": "top", "triggers": {"after_seconds": "10"}},
    {"colors": "blue", "triggers": [], "exclude": "/cart", "texts": ["x"], "language": "xx"},
])
@pytest.mark.sqlite_only
def test_malformed_settings_fall_back_to_defaults(api: tuple[TestClient, World], settings: dict[str, Any]) -> None:
    client, world = api
    configure(client, world, settings=settings)
    body = config(client, "en-GB")
    assert body["colors"]["accent"] == "#0b6e4f" and body["position"] == "bottom-right"
    assert body["triggers"]["after_seconds"] is None and body["exclude"] == []
    assert body["language"] == "en" and body["texts"]["button"] == "Call me back"


@pytest.mark.sqlite_only
def test_the_config_is_readable_only_by_the_sites_own_origins(api: tuple[TestClient, World]) -> None:
    client, world = api
    configure(client, world, origins=["https://shop.example"])
    allowed = client.get("/api/v1/sites/shop/config", headers={"origin": "https://shop.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    other = client.get("/api/v1/sites/shop/config", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert client.get("/api/v1/sites/nope/config").json()["error"]["field"] == "site"


def test_visit_facts_are_kept_and_anything_else_is_dropped(api: tuple[TestClient, World]) -> None:
    client, world = api
    touch = {"source": "google", "medium": "cpc", "landing_page": "https://shop.example/?gclid=1",
             "at": "2026-11-01T10:00:00Z", "evil": "x", "referrer": 7, "campaign": "c" * 500}
    response = client.post("/api/v1/callbacks", json={
        "site": "shop", "phone": "+48501234567", "visitor_id": "v1",
        "visit": {"visits": 3, "first_seen": "2026-11-01T10:00:00Z", "first_touch": touch, "last_touch": "direct",
                  "click_id": "gclid=1", "language": "pl-PL", "unknown": "x", "landing_page": ["x"]},
    })
    assert response.status_code == 201, response.text

    async def load() -> Lead:
        async with world.runtime.sessions() as session:
            return (await session.execute(select(Lead))).scalar_one()

    source = client.portal.call(load).source  # type: ignore[union-attr]
    assert source["visits"] == 3 and source["click_id"] == "gclid=1" and source["language"] == "pl-PL"
    assert source["first_touch"] == {"source": "google", "medium": "cpc", "campaign": "c" * 300,
                                     "landing_page": "https://shop.example/?gclid=1", "at": "2026-11-01T10:00:00Z"}
    assert "last_touch" not in source and "unknown" not in source and "landing_page" not in source


@pytest.mark.sqlite_only
def test_the_widget_is_served_small_cached_and_revalidated(api: tuple[TestClient, World]) -> None:
    client, _ = api
    widget = widget_file()
    response = client.get("/widget.js", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200 and response.content == widget.raw  # decoded by the client
    assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) == len(widget.gzipped) == len(gzip.compress(widget.raw, 9, mtime=0))
    assert response.headers["content-type"].startswith("application/javascript")
    assert "max-age=86400" in response.headers["cache-control"]
    assert response.headers["vary"] == "Accept-Encoding"
    etag = response.headers["etag"]
    assert etag == f'W/"{widget.digest}"'
    again = client.get("/widget.js", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/widget.js", headers={"if-none-match": '"other"'}).status_code == 200

    pinned = client.get(f"/widget.{widget.digest}.js")
    assert pinned.content == widget.raw and "immutable" in pinned.headers["cache-control"]
    assert "max-age=31536000" in pinned.headers["cache-control"]
    assert client.get("/widget.0123456789abcdef.js").status_code == 404


@pytest.mark.sqlite_only
def test_the_example_pages_are_served_with_their_headers(api: tuple[TestClient, World]) -> None:
    client, _ = api
    strict = client.get("/examples/strict-csp.html")
    assert strict.status_code == 200 and strict.headers["content-security-policy"] == STRICT_CSP
    assert client.get("/examples/hostile.css").headers["content-type"].startswith("text/css")
    assert 'src="/widget.js" data-site="demo"' in client.get("/demo").text
    other = client.get("/examples/cross-origin.html", headers={"host": "localhost:8123"})
    assert 'src="http://127.0.0.1:8123/widget.js"' in other.text
    back = client.get("/examples/cross-origin.html", headers={"host": "127.0.0.1:8123"})
    assert 'src="http://localhost:8123/widget.js"' in back.text
    for name in ("..%2Fpyproject.toml", "nope.html", "README.md", ".hidden.html"):
        assert client.get(f"/examples/{name}").status_code == 404, name
