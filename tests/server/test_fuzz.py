"""Thousands of malformed requests against the public API, with every protection on (and once with the
limits off, so hostile values reach the write): never a 5xx, and never a row written for a refused
request (no lead, no rate-limit count, no notice).

Every answer must match its schema in the description. Requests come from the OpenAPI description (its request schema turned into Hypothesis strategies, with
strings up to a little past their documented lengths), from a good request with one field
replaced by any JSON at all, from raw bytes, and from odd URLs. `RINGBACK_FUZZ_EXAMPLES` sets how many of
each kind (default 300: 1,200 posts and 600 odd URLs per database, 3,600 requests in a run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from dialer.db.models import Lead, RateLimitCounter, SiteNotice
from server.openapi import CALLBACK_REQUEST, SCHEMAS
from tests.server.test_abuse_support import AbuseApi, abuse_api

EXAMPLES = int(os.environ.get("RINGBACK_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same requests every run: a failure can be reproduced
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

GOOD_PHONES = st.integers(0, 9999).map(lambda i: f"+4850123{i:04d}")
PHONES = GOOD_PHONES | st.sampled_from([
    "+48501234567", "501 234 567", "+48 600 100 200", "+44 7400 123456", "+1 900 212 3456", "+44 9012345678",
    "+49 177 991234567", "0", "+", "", "١٢٣٤٥٦٧٨٩", "+48 501 234 567 ext. 9" * 3, "<script>",
]) | st.text(max_size=50)
# Text as hostile as JSON can carry: control characters, NUL, lone surrogates, markup, very long.
HOSTILE_TEXT = (
    st.text(max_size=300)
    | st.text(st.characters(categories=["Cc", "Cs", "Co", "Zl"]), max_size=20)
    | st.sampled_from(["\x00", "\ud800", "a\udfffb", "<script>alert(1)</script>", "' OR 1=1 --", "\u202e", "x" * 5000])
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=20,
)
ANSWERS = {name: Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": {"schemas": SCHEMAS}})
           for name in ("CreatedLead", "Error")}
IPS = st.sampled_from(["203.0.113.1", "203.0.113.2", "2001:db8::1"]) | st.ip_addresses().map(str)


def described(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the types the description gives, strings up to a few characters past `maxLength`."""
    if "$ref" in schema:
        return described(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    if "anyOf" in schema:
        return st.one_of([described(option) for option in schema["anyOf"]])
    types = schema["type"] if isinstance(schema.get("type"), list) else [schema.get("type")]
    found: list[st.SearchStrategy[Any]] = []
    for kind in types:
        if kind == "string":
            limit = schema.get("maxLength", 60)
            found.append(st.text(max_size=limit + 3) | st.text(min_size=max(0, limit - 1), max_size=limit + 1))
            if schema.get("format") == "date-time" or "ISO 8601" in schema.get("description", ""):
                found.append(st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()))
        elif kind == "object":
            props = {name: described(sub) for name, sub in schema.get("properties", {}).items()}
            required = {name: props.pop(name) for name in schema.get("required", [])}
            found.append(st.fixed_dictionaries(required, optional=props))
        elif kind == "boolean":
            found.append(st.booleans())
        elif kind == "integer":
            found.append(st.integers() | st.integers(schema.get("minimum", -10), schema.get("maximum", 10) + 1))
        elif kind == "null":
            found.append(st.none())
    return st.one_of(found)


@pytest.fixture
def api(database_url: str) -> Iterator[AbuseApi]:
    with abuse_api(database_url) as api:  # every protection at its default
        yield api


def written(api: AbuseApi) -> tuple[int, int, int]:
    async def go() -> tuple[int, int, int]:
        counts = [select(func.count()).select_from(model).scalar_subquery()
                  for model in (Lead, RateLimitCounter, SiteNotice)]
        async with api.world.runtime.sessions() as session:
            leads, counters, notices = (await session.execute(select(*counts))).one()
            return leads, counters, notices

    return api.call(go)  # type: ignore[no-any-return]


def send(api: AbuseApi, ip: str, content: bytes, content_type: str = "application/json") -> None:
    before = written(api)
    response = api.client.post(
        "/api/v1/callbacks", content=content, headers={"content-type": content_type, "x-test-client-ip": ip}
    )
    after = written(api)
    assert response.status_code < 500, (response.status_code, response.text, content[:500])
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code == 201:
        assert after[0] == before[0] + 1
        ANSWERS["CreatedLead"].validate(response.json())
    else:
        assert response.status_code >= 400 and response.json()["error"]["message"]
        ANSWERS["Error"].validate(response.json())
        assert after == before, (response.status_code, response.text, content[:500])
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0


def encode(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


def test_requests_shaped_by_the_openapi_description(api: AbuseApi) -> None:
    token = api.token()
    @FUZZ
    @given(body=described(CALLBACK_REQUEST), site=st.sampled_from(["shop", None]), phone=PHONES | st.none(),
           token=st.sampled_from([token, None]), ip=IPS)
    def run(body: dict[str, Any], site: str | None, phone: str | None, token: str | None, ip: str) -> None:
        # Lean towards requests that get past the first checks, so the deeper ones are reached too.
        if site:
            body["site"] = site
        if phone is not None:
            body["phone"] = phone
        if token:
            body["form_token"] = token
        send(api, ip, encode(body))

    run()


@pytest.mark.parametrize("limits", ["default", "off"])
def test_a_good_request_with_one_field_replaced_by_anything(api: AbuseApi, limits: str) -> None:
    if limits == "off":  # so that hostile values reach the write, not just the rate limiter
        api.settings(rate_limits={"ip": None, "visitor": None, "phone": None, "site": None},
                     one_active_per_number=False, daily_calls=None, daily_spend=None)
    token = api.token()
    good = {"site": "shop", "phone": "+48501234567", "timezone": "Europe/Warsaw", "form_token": token,
            "name": "Ann", "utm": {"source": "google"}, "consent": True}
    fields = st.sampled_from([*CALLBACK_REQUEST["properties"], "extra", ""])

    @FUZZ
    @given(field=fields, value=JSON_VALUES | HOSTILE_TEXT, drop=st.booleans(), ip=IPS, phone=GOOD_PHONES)
    def run(field: str, value: Any, drop: bool, ip: str, phone: str) -> None:
        body = {**good, "phone": phone}
        if drop:
            body.pop(field, None)
        else:
            body[field] = value
        send(api, ip, encode(body))

    run()


def test_raw_bytes_and_wrong_content_types(api: AbuseApi) -> None:
    fragments = st.sampled_from([b"{", b"}", b"[", b'"site"', b":", b",", b'"shop"', b"\\u0000", b"\\ud800",
                                 b"1e999999", b"NaN", b"\xff", b"\x00", b"null", b"-0", b'"\\', b" "])
    bodies = st.binary(max_size=300) | st.lists(fragments, max_size=40).map(b"".join)

    @FUZZ
    @given(content=bodies, content_type=st.sampled_from(["application/json", "text/plain", "", "x/\x7f"]))
    def run(content: bytes, content_type: str) -> None:
        send(api, "203.0.113.9", content, content_type)

    run()


def test_odd_urls(api: AbuseApi) -> None:
    segment = st.text(max_size=80).map(lambda s: quote(s, safe=""))

    @FUZZ
    @given(key=segment, lead_id=segment, token=st.text(max_size=80) | st.none())
    def run(key: str, lead_id: str, token: str | None) -> None:
        before = written(api)
        for response in (
            api.client.get(f"/api/v1/sites/{key}/config"),
            api.client.get(f"/api/v1/callbacks/{lead_id}", params={} if token is None else {"token": token}),
        ):
            assert response.status_code < 500, response.text
        assert written(api) == before

    run()
