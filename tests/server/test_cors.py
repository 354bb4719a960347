"""Every answer of the widget's API is readable by the site's pages on another origin: the 201 and the
status, and just as much every refusal (400, 404, 409, 422, 429, 503) and every preflight. A page the site
does not list gets no CORS headers, whatever the answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

import server.api
from dialer.db.models import Site
from tests.conftest import World
from tests.harness import app_client

pytestmark = pytest.mark.sqlite_only

SHOP = "https://shop.example"
OTHER = "https://evil.example"


async def _listed(world: World) -> None:
    async with world.runtime.sessions() as session, session.begin():
        site = await session.get(Site, world.site.id)
        assert site is not None
        site.origins, site.any_country = [SHOP], False
        site.settings = {**site.settings, "abuse": {**site.settings["abuse"], "one_active_per_number": True,
                                                    "countries": ["PL"]}}


@pytest.fixture
def shop(database_url: str) -> Iterator[tuple[TestClient, World]]:
    with app_client(database_url, run_engine=False, then=_listed) as pair:
        yield pair


def _post(client: TestClient, origin: str = SHOP, **body: Any) -> Any:
    return client.post("/api/v1/callbacks", json={"site": "shop", "phone": "501 234 567", **body},
                       headers={"Origin": origin})


def _readable(response: Any, origin: str = SHOP) -> None:
    assert response.headers.get("access-control-allow-origin") == origin, (response.status_code, response.text)
    assert "Origin" in response.headers.get("vary", "")


def test_every_refusal_a_visitor_can_meet_is_readable_by_the_sites_page(
    shop: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = shop
    not_json = client.post("/api/v1/callbacks", content=b"{", headers={"Origin": SHOP,
                                                                       "Content-Type": "application/json"})
    assert not_json.status_code == 400
    _readable(not_json)
    unknown_site = client.get("/api/v1/sites/nope/config", headers={"Origin": SHOP})
    assert unknown_site.status_code == 404
    _readable(unknown_site)
    mistyped = _post(client, phone="12")
    assert mistyped.status_code == 422 and mistyped.json()["error"]["field"] == "phone"
    _readable(mistyped)
    abroad = _post(client, phone="+1 202 555 0143")
    assert abroad.status_code == 422 and abroad.json()["error"]["code"] == "country_not_allowed"
    _readable(abroad)
    created = _post(client)
    assert created.status_code == 201
    _readable(created)
    again = _post(client)
    assert again.status_code == 429 and again.json()["error"]["code"] == "already_requested"
    _readable(again)
    assert "Retry-After" in again.headers["access-control-expose-headers"]
    lead = created.json()
    status = client.get(f"/api/v1/callbacks/{lead['id']}", params={"token": lead["token"]}, headers={"Origin": SHOP})
    _readable(status)
    wrong_token = client.get(f"/api/v1/callbacks/{lead['id']}", params={"token": "x"}, headers={"Origin": SHOP})
    assert wrong_token.status_code == 404
    _readable(wrong_token)
    message = _post(client, phone="501 234 568", message="Call me about the sofa")
    kept = message.json()
    over = client.delete(f"/api/v1/callbacks/{kept['id']}", params={"token": kept["token"]}, headers={"Origin": SHOP})
    assert over.status_code == 409
    _readable(over)

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT …", {}, ConnectionRefusedError(111, "Connect call failed"))

    monkeypatch.setattr(server.api, "write", lost)
    down = _post(client, phone="501 234 569")
    assert down.status_code == 503
    _readable(down)


def test_preflights_answer_every_route_of_the_api(shop: tuple[TestClient, World]) -> None:
    client, _ = shop
    for path, method in (("/api/v1/callbacks", "POST"), ("/api/v1/callbacks/abc", "DELETE"),
                         ("/api/v1/sites/shop/config", "GET")):
        asked = client.options(path, headers={"Origin": SHOP, "Access-Control-Request-Method": method,
                                              "Access-Control-Request-Headers": "content-type"})
        assert asked.status_code == 204, path
        _readable(asked)
        assert method in asked.headers["access-control-allow-methods"]
        assert "content-type" in asked.headers["access-control-allow-headers"].lower()


def test_a_page_the_site_does_not_list_reads_nothing(shop: tuple[TestClient, World]) -> None:
    client, _ = shop
    for response in (_post(client, OTHER), _post(client, OTHER, phone="12"),
                     client.get("/api/v1/sites/shop/config", headers={"Origin": OTHER})):
        assert "access-control-allow-origin" not in response.headers, response.text
    assert _post(client, OTHER).json()["error"]["code"] == "origin_not_allowed"
