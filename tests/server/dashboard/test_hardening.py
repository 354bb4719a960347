"""The dashboard's headers and hostile input: a nonce-based CSP on its pages, no framing anywhere (the
visitor's /callback/{id} page included), HSTS over https, and 4xx (never 500) for odd tokens, NUL
characters, huge pages and ids, and dates past the calendar."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote

import pytest

from dialer.core.errors import InvalidField
from dialer.db.models import Site
from dialer.reports.filters import LeadFilter
from server.live import MAX_CLIENT_MESSAGE, MESSAGE_TOO_BIG
from tests.harness import app_client
from tests.server.dashboard.conftest import ANNA, OWNER, Dash, add_people
from tests.server.test_live_limits import closed_with

PAGES = ["/dashboard/", "/dashboard/leads", "/dashboard/costs", "/dashboard/sites", "/dashboard/account",
         "/dashboard/users", "/dashboard/audit"]


def _nonce(policy: str) -> str:
    found = re.search(r"script-src 'nonce-([A-Za-z0-9_-]+)'", policy)
    assert found, policy
    return found.group(1)


@pytest.mark.sqlite_only
def test_dashboard_pages_allow_only_their_own_nonced_script(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    seen = set()
    for path in [*PAGES, f"/dashboard/sites/{dash.world.site.id}", f"/dashboard/sites/{dash.world.site.id}/managers",
                 "/dashboard/login"]:
        page = dash.client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        nonce = _nonce(policy)
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts and all(f'nonce="{nonce}"' in s for s in scripts), (path, scripts)
        assert not re.search(r"\son[a-z]+=", page.text), f"an inline event handler on {path}"
        assert "javascript:" not in page.text
        seen.add(nonce)
    assert len(seen) == len(PAGES) + 3, "a fresh nonce for every response"


def test_nothing_can_be_framed(dash: Dash) -> None:
    lead = dash.run(dash.world.submit, "+48501234567")
    for path in [f"/callback/{lead.id}", "/callback/no-such-lead", "/healthz", "/api/v1/openapi.json", "/demo",
                 "/dashboard/login", "/widget.js"]:
        response = dash.client.get(path, follow_redirects=False)
        assert response.status_code < 500, path
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), path
        assert response.headers.get("x-frame-options") == "DENY", path
        assert response.headers.get("x-content-type-options") == "nosniff", path
        assert "strict-transport-security" not in response.headers, "no HSTS on a plain-http deployment"


@pytest.fixture
def https_dash(database_url: str) -> Iterator[Dash]:
    async def https(world):  # type: ignore[no-untyped-def]
        await add_people(world)
        world.runtime.settings = dataclasses.replace(world.runtime.settings, public_url="https://calls.shop.example")

    with app_client(database_url, base_url="https://testserver", then=https) as (client, world):
        yield Dash(client, world, Site())


@pytest.mark.sqlite_only
def test_hsts_when_the_public_url_is_https(https_dash: Dash) -> None:
    for path in ["/dashboard/login", "/healthz", "/widget.js"]:
        response = https_dash.client.get(path)
        assert response.headers["strict-transport-security"].startswith("max-age="), path


def test_a_non_ascii_csrf_token_is_a_403_not_a_500(dash: Dash) -> None:
    refused = dash.client.post("/dashboard/login", data={"email": OWNER, "password": "x", "csrf": "żółw"})
    assert refused.status_code == 403
    assert dash.login(OWNER).status_code == 303
    refused = dash.client.post("/dashboard/logout", data={"csrf": "é" * 40})
    assert refused.status_code == 403


HOSTILE = ["\x00", "a\x00b", "9" * 30, "-1", "²", "9999-12-31", "0001-01-01", "2026-02-30", "%00", "é" * 300]


def test_hostile_filters_paths_and_ids_are_4xx_never_500(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    lead = dash.run(dash.world.submit, "+48501234567")
    gets = ["/dashboard/leads?{k}={v}", "/dashboard/leads.csv?{k}={v}", "/dashboard/costs?period=custom&{k}={v}",
            "/dashboard/costs.csv?period=custom&{k}={v}", "/dashboard/?{k}={v}"]
    for template in gets:
        for key in ("page", "from", "to", "status", "source", "campaign", "site", "period"):
            for value in HOSTILE:
                path = template.format(k=key, v=quote(value))
                assert dash.client.get(path).status_code < 500, path
    for path in ["/dashboard/leads/%00", f"/dashboard/leads/{lead.id}%00", "/dashboard/leads/" + "9" * 300,
                 "/dashboard/recordings/%00", "/dashboard/sites/99999999999999999999",
                 "/dashboard/sites/99999999999999999999/managers", "/dashboard/users/99999999999999999999/remove"]:
        assert dash.client.get(path).status_code in (400, 404, 405), path
    page = f"/dashboard/leads/{lead.id}"
    for field in ("manager_id",):
        for value in HOSTILE:
            answer = dash.post(f"/dashboard/leads/{lead.id}/call-back", {field: value}, page=page)
            assert 400 <= answer.status_code < 500, (field, value)
    for value in HOSTILE:
        answer = dash.post("/dashboard/notices/99999999999999999999/seen", {"site": value}, page="/dashboard/leads")
        assert 400 <= answer.status_code < 500, value
        answer = dash.post(f"/dashboard/sites/{dash.world.site.id}/managers",
                           {"manager_id": value, "name": value, "phone": value, "position": value},
                           page=f"/dashboard/sites/{dash.world.site.id}/managers")
        assert answer.status_code < 500, value


def test_the_errors_name_the_field(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    huge = dash.client.get("/dashboard/leads?page=" + "9" * 30)
    assert huge.status_code == 400 and "'page'" in huge.text
    late = dash.client.get("/dashboard/leads?to=9999-12-31")
    assert late.status_code == 400 and "'to'" in late.text
    nul = dash.client.get("/dashboard/leads?source=a%00b")
    assert nul.status_code == 400 and "'source'" in nul.text


def test_a_lead_filter_refuses_what_a_database_cannot_compare() -> None:
    for field, value in (("source", "a\x00b"), ("campaign", "x" * 501), ("status", "\x00")):
        with pytest.raises(InvalidField) as refused:
            LeadFilter(**{field: value})  # type: ignore[arg-type]
        assert refused.value.field == field
    with pytest.raises(InvalidField):
        LeadFilter(start=datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose


@pytest.mark.sqlite_only
def test_a_too_large_message_closes_the_dashboards_socket(dash: Dash) -> None:
    assert dash.login(ANNA).status_code == 303
    with dash.client.websocket_connect("/dashboard/live/ws") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_text("x" * (MAX_CLIENT_MESSAGE + 1))  # the page sends nothing; more than this is refused
        assert closed_with(ws) == MESSAGE_TOO_BIG
    with dash.client.websocket_connect("/dashboard/live/ws") as ws:  # a new one is as good as ever
        assert ws.receive_json()["type"] == "ready"
