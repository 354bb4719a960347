"""Hostile input wherever a visitor can type: length-limited, stored exactly as given, and what cannot be
stored (NUL, broken UTF-16) refused by field. Also: the OpenAPI description matches the running API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select
from starlette.routing import Route

from dialer.config import Settings
from dialer.db.models import Lead
from server import schema as api_schema
from server.app import create_app
from server.openapi import CALLBACK_REQUEST, SPEC
from tests.server.test_abuse_support import VISITOR, AbuseApi, abuse_api

HOSTILE = {
    "name": "<script>alert('x')</script> Zoë 🙂 \"; DROP TABLE leads; --",
    "page_url": "https://shop.example/?q=<img src=x onerror=alert(1)>&x=%00",
    "referrer": "javascript:alert(document.cookie)",
    "visitor_id": "../../etc/passwd",
    "utm": {"source": "{{7*7}}", "campaign": "${jndi:ldap://x}", "term": "\u202eevil\u202c"},
}


@pytest.fixture
def api(database_url: str) -> Iterator[AbuseApi]:
    with abuse_api(database_url, {"abuse": {"form_token": False, "rate_limits": {"ip": None}}}) as api:
        yield api


def load(api: AbuseApi, lead_id: str) -> Lead:
    return api.call(api.world.lead, lead_id)  # type: ignore[no-any-return]


def schema(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]})


def described(name: str) -> dict[str, Any]:
    """A request field's schema in the description, its reference followed."""
    found = CALLBACK_REQUEST["properties"][name]
    for option in found.get("anyOf", [found]):
        if "$ref" in option:
            return SPEC["components"]["schemas"][option["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return found  # type: ignore[no-any-return]


def test_hostile_text_is_stored_exactly_as_given(api: AbuseApi) -> None:
    created = api.post(**HOSTILE)
    assert created.status_code == 201, created.text
    lead = load(api, created.json()["id"])
    assert (lead.name, lead.page_url, lead.referrer, lead.visitor_id) == (
        HOSTILE["name"], HOSTILE["page_url"], HOSTILE["referrer"], HOSTILE["visitor_id"])
    assert lead.utm == HOSTILE["utm"]
    message = api.post(phone="+48501234568", message="<b>hi</b>\n\t\r🙂" * 100).json()
    assert load(api, message["id"]).message == "<b>hi</b>\n\t\r🙂" * 100


LIMITED = ["name", "message", "visitor_id", "page_url", "referrer"]


@pytest.mark.parametrize("field", LIMITED)
def test_each_text_field_takes_its_documented_length_and_not_one_more(api: AbuseApi, field: str) -> None:
    limit = CALLBACK_REQUEST["properties"][field]["maxLength"]
    over = api.post(**{field: "é" * (limit + 1)})
    assert over.status_code == 422 and over.json()["error"]["field"] == field
    assert api.nothing_written(events=0)
    assert api.post(**{field: "é" * limit}).status_code == 201


def test_utm_values_take_their_documented_length(api: AbuseApi) -> None:
    limit = described("utm")["properties"]["campaign"]["maxLength"]
    over = api.post(utm={"campaign": "c" * (limit + 1)})
    assert over.status_code == 422 and over.json()["error"]["field"] == "utm.campaign"
    assert api.post(utm={"campaign": "c" * limit}).status_code == 201


UNSTORABLE = [
    (b'"name": "Ann\\u0000"', "name"),
    (b'"message": "\\ud800 broken"', "message"),
    (b'"utm": {"source": "a\\u0000b"}', "utm"),
    (b'"utm": {"\\udfff": "x"}', "utm"),
    (b'"visit": {"language": "\\u0000"}', "visit"),
    (b'"\\u0000": 1', "body"),
]


@pytest.mark.parametrize(("fragment", "field"), UNSTORABLE)
def test_text_that_cannot_be_stored_is_refused_by_field(api: AbuseApi, fragment: bytes, field: str) -> None:
    body = b'{"site": "shop", "phone": "' + VISITOR.encode() + b'", ' + fragment + b"}"
    response = api.client.post("/api/v1/callbacks", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field and response.json()["error"]["code"] == "invalid_text"
    assert api.nothing_written(events=0)


@pytest.mark.sqlite_only
def test_deeply_nested_json_is_refused(api: AbuseApi) -> None:
    body = b'{"site": "shop", "utm": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = api.client.post("/api/v1/callbacks", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and api.nothing_written(events=0)


@pytest.mark.sqlite_only
def test_times_out_of_range_are_refused(api: AbuseApi) -> None:
    for value in ("0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"):
        response = api.post(scheduled_for=value)
        assert response.status_code == 422 and response.json()["error"]["field"] == "scheduled_for"
    assert api.nothing_written(events=0)


def test_odd_keys_and_ids_in_urls_are_not_found(api: AbuseApi) -> None:
    for key in ("%00", "x" * 300, "%F0%9F%99%82", "..%2F..%2F"):
        response = api.client.get(f"/api/v1/sites/{key}/config")
        assert response.status_code == 404 and response.json()["error"]["message"]
    for lead_id in ("%00", "y" * 300):
        assert api.client.get(f"/api/v1/callbacks/{lead_id}", params={"token": "\x00"}).status_code == 404


# --- the OpenAPI description is the API's --------------------------------------------------------------


@pytest.mark.sqlite_only
def test_the_description_is_served(api: AbuseApi) -> None:
    served = api.client.get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.json() == json.loads(json.dumps(SPEC))
    assert served.json()["openapi"] == "3.1.0"


def test_every_http_route_of_the_api_is_described_and_every_field_is_known() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", demo=True), run_engine=False)
    api_routes: dict[str, set[str]] = {}
    for r in app.routes:
        if isinstance(r, Route) and r.path.startswith("/api/"):
            api_routes.setdefault(r.path, set()).update(m.lower() for m in r.methods or () if m not in ("HEAD", "OPTIONS"))
    assert api_routes == {path: set(methods) for path, methods in SPEC["paths"].items()}
    assert set(CALLBACK_REQUEST["properties"]) == set(api_schema.CallbackRequest.__struct_fields__)
    for schema_name in SPEC["components"]["schemas"]:
        Draft202012Validator.check_schema(SPEC["components"]["schemas"][schema_name])


def test_real_answers_match_the_described_schemas(api: AbuseApi) -> None:
    api.settings(form_token=True)
    config = api.config()
    schema("SiteConfig").validate(config)
    body = {"site": "shop", "phone": VISITOR, "form_token": config["form_token"], "name": "Ann",
            "utm": {"source": "google"}, "consent": True, "visit": {"visits": 2}}
    schema("CallbackRequest").validate(body)
    api.advance(5)
    created = api.post(body)
    assert created.status_code == 201
    schema("CreatedLead").validate(created.json())
    status = api.client.get(f"/api/v1/callbacks/{created.json()['id']}", params={"token": created.json()["token"]})
    schema("LeadStatus").validate(status.json())
    errors: list[Any] = [api.post({"site": "shop", "phone": "nope", "form_token": config["form_token"]}),
                         api.post(body), api.client.get("/api/v1/sites/none/config")]
    assert [e.status_code for e in errors] == [422, 429, 404]
    for error in errors:
        schema("Error").validate(error.json())
    assert errors[1].headers["retry-after"]
    cancel = {"token": created.json()["token"]}
    cancelled = api.client.delete(f"/api/v1/callbacks/{created.json()['id']}", params=cancel)
    assert cancelled.status_code == 200
    schema("LeadStatus").validate(cancelled.json())
    again = api.client.delete(f"/api/v1/callbacks/{created.json()['id']}", params=cancel)
    assert again.status_code == 409
    schema("Error").validate(again.json())


def test_stored_leads_hold_no_trace_of_the_bot_fields(api: AbuseApi) -> None:
    created = api.post(hp="", captcha="ignored where no captcha is asked")
    assert created.status_code == 201

    async def go() -> Lead:
        async with api.world.runtime.sessions() as session:
            return (await session.execute(select(Lead))).scalar_one()

    lead = api.call(go)
    assert "captcha" not in json.dumps(lead.source) and "hp" not in lead.source
