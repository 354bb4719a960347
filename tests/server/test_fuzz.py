"""Thousands of malformed requests against the public API, with every protection on (and once with the
limits off, so hostile values reach the write): never a 5xx, and never a row written for a refused
request (no lead, no rate-limit count, no notice). Then the rest of what a stranger can reach: the
dashboard's forms and filters (signed in, as an owner would send them and as an attacker would), the
reschedule page, and Twilio's webhooks, signed and unsigned: never a 5xx there either.

Every answer must match its schema in the description. Requests come from the OpenAPI description (its request schema turned into Hypothesis strategies, with
strings up to a little past their documented lengths), from a good request with one field
replaced by any JSON at all, from raw bytes, and from odd URLs. `RINGBACK_FUZZ_EXAMPLES` sets how many of
each kind (default 200: per database 800 posts and 200 odd-URL examples of six requests each, 4,000
requests in a run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from dialer.db.models import Lead, RateLimitCounter, SiteNotice
from server.openapi import CALLBACK_REQUEST, SCHEMAS
from tests.server.test_abuse_support import AbuseApi, abuse_api

EXAMPLES = int(os.environ.get("RINGBACK_FUZZ_EXAMPLES", "200"))
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
    token = api.token()
    if limits == "off":  # so that hostile values reach the write, not just the rate limits or a spent token
        api.settings(rate_limits={"ip": None, "network": None, "visitor": None, "phone": None, "site": None},
                     one_active_per_number=False, daily_calls=None, daily_spend=None, form_token=False)
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

    words = st.text(max_size=80).map(lambda t: t.encode("utf-8", "backslashreplace").decode())

    @FUZZ
    @given(key=segment, lead_id=segment, token=st.text(max_size=80) | st.none(), lang=words, zone=words)
    def run(key: str, lead_id: str, token: str | None, lang: str, zone: str) -> None:
        before = written(api)
        for response in (
            api.client.get(f"/api/v1/sites/{key}/config"),
            api.client.get("/api/v1/sites/shop/config", params={"lang": lang, "timezone": zone}),
            api.client.get(f"/api/v1/callbacks/{lead_id}", params={} if token is None else {"token": token}),
            api.client.get(f"/examples/{key}"),
            api.client.get(f"/widget.{key}.js"),
            api.client.options(f"/api/v1/callbacks/{lead_id}", headers={"origin": "https://x.example"}),
        ):
            assert response.status_code < 500, response.text
        assert written(api) == before

    run()


# The rest of the surface: dashboard, reschedule page, Twilio's webhooks ---------------------------------
# Each example here is several requests: a tenth as many examples keeps the suite's time.
# Not shrunk: the first failing example is reported as found (shrinking one takes minutes here).
FEW = settings(FUZZ, max_examples=max(10, EXAMPLES // 10), phases=[Phase.explicit, Phase.reuse, Phase.generate])
# What these found in the dashboard (the `dash` helper's part of issue 14, fixed on its branch): the CSRF
# field compared as str (a non-ASCII one is a TypeError), NUL in a filter or a path reaching PostgreSQL,
# a site id past int32. Remove the marker once that branch is merged: these then pass.

FORM_TEXT = HOSTILE_TEXT | st.sampled_from(["", "0", "-1", "99999999999999999999", "1e309", "on", "2026-02-30",
                                            "9999-12-31", "0000-01-01", "Mon 09:00-17:00", "+48501234567"])
QUERY_TEXT = st.text(max_size=40) | st.sampled_from(["", "0", "-1", "9" * 30, "2026-13-01", "9999-12-31",
                                                     "\x00", "%00", "1e9", "all"])


def no_5xx(response: Any, what: object) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300], what)


def _quiet_hypothesis_strings(values: dict[str, Any]) -> dict[str, str]:
    # A test client sends str; lone surrogates cannot be put on the wire: send them as their escapes.
    return {k.encode("utf-8", "backslashreplace").decode(): v.encode("utf-8", "backslashreplace").decode()
            for k, v in values.items()}


@pytest.fixture
def dash(database_url: str) -> Iterator[Any]:
    from tests.server.dashboard.conftest import OWNER, build_dash

    for found in build_dash(database_url):
        assert found.login(OWNER).status_code == 303
        yield found


def test_the_dashboards_pages_and_filters_signed_in(dash: Any) -> None:
    site = dash.world.site.id
    pages = ["/dashboard/", "/dashboard/leads", "/dashboard/leads.csv", "/dashboard/costs", "/dashboard/costs.csv",
             "/dashboard/audit", "/dashboard/live/panels", "/dashboard/sites", f"/dashboard/sites/{site}",
             f"/dashboard/sites/{site}/managers", "/dashboard/login"]
    names = st.sampled_from(["status", "site", "source", "campaign", "from", "to", "page", "period", "next", "done",
                             "saved", "q", "manager_id"])
    segment = st.text(max_size=60).map(lambda t: quote(t.encode("utf-8", "backslashreplace").decode(), safe=""))

    @FEW
    @given(path=st.sampled_from(pages), query=st.dictionaries(names, QUERY_TEXT, max_size=4), segment=segment,
           number=st.integers(-(2**70), 2**70))
    def run(path: str, query: dict[str, str], segment: str, number: int) -> None:
        params = _quiet_hypothesis_strings(query)
        no_5xx(dash.client.get(path, params=params), (path, params))
        for odd in (f"/dashboard/leads/{segment}", f"/dashboard/recordings/{segment}", f"/dashboard/sites/{number}",
                    f"/dashboard/sites/{number}/managers", f"/dashboard/static/{segment}"):
            no_5xx(dash.client.get(odd), odd)

    run()


def test_the_dashboards_forms_signed_in(dash: Any) -> None:
    from tests.server.dashboard.conftest import form_values

    site = dash.world.site.id
    lead = dash.run(dash.world.submit)
    forms = {
        f"/dashboard/sites/{site}": form_values(dash.client.get(f"/dashboard/sites/{site}").text),
        f"/dashboard/sites/{site}/managers": {"manager_id": "new", "name": "Ola", "phone": "+48501234999",
                                              "position": "4", "active": "on", "working_hours": ""},
        f"/dashboard/leads/{lead.id}/call-back": {"manager_id": "1"},
        f"/dashboard/leads/{lead.id}/handled": {"outcome": "talked"},
        f"/dashboard/leads/{lead.id}/cancel": {},
        "/dashboard/notices/1/seen": {},
        "/dashboard/notices/99999999999/seen": {},
    }
    paths = st.sampled_from(sorted(forms))

    @FEW
    @given(path=paths, data=st.data(), csrf=st.sampled_from(["good", "missing", "wrong", "odd"]))
    def run(path: str, data: st.DataObject, csrf: str) -> None:
        good = forms[path]
        fields = st.sampled_from([*good, "csrf", "extra"]) if good else st.sampled_from(["csrf", "extra"])
        changed = data.draw(st.dictionaries(fields, FORM_TEXT, max_size=4))
        body = _quiet_hypothesis_strings({**good, **changed})
        page = path if path.startswith("/dashboard/sites/") else "/dashboard/leads"
        token = {"good": dash.csrf(page), "missing": None, "wrong": "x" * 43, "odd": "é\u202e" * 10}[csrf]
        body.pop("csrf", None)
        if token is not None:
            body["csrf"] = token
        no_5xx(dash.client.post(path, data=body, follow_redirects=False), (path, body))

    run()


def test_the_reschedule_page(api: AbuseApi) -> None:
    from dialer.telephony.simulator import Behaviour
    from tests.harness import MANAGER_PHONES

    for phone in MANAGER_PHONES:
        api.world.sim.script(phone, Behaviour.never_answers())
    lead = api.call(api.world.submit)
    api.call(api.world.until_status, lead.id, "missed")  # a lead the page offers times for
    real_sig = api.world.engine.notices.signature(lead.id)
    ids = st.sampled_from([lead.id, lead.id.upper(), ""]) | st.text(max_size=40)
    sigs = st.sampled_from([real_sig, real_sig[:-1], None]) | st.text(max_size=40)
    starts = FORM_TEXT | st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat())

    @FEW
    @given(lead_id=ids, sig=sigs, start=starts, extra=st.dictionaries(st.text(max_size=10), FORM_TEXT, max_size=2))
    def run(lead_id: str, sig: str | None, start: str, extra: dict[str, str]) -> None:
        path = "/callback/" + quote(lead_id.encode("utf-8", "backslashreplace").decode(), safe="")
        params = _quiet_hypothesis_strings({} if sig is None else {"sig": sig})
        no_5xx(api.client.get(path, params=params), (path, params))
        body = _quiet_hypothesis_strings({**extra, **params, "start": start})
        no_5xx(api.client.post(path, data=body), (path, body))

    run()


@pytest.fixture
def twilio_app(database_url: str) -> Iterator[tuple[Any, Any, str]]:
    """The app with Twilio as its provider (its REST API nowhere: only the webhooks are tried), a lead
    scheduled for tomorrow with one leg, and the auth token webhooks are signed with."""
    from datetime import timedelta

    from starlette.testclient import TestClient

    from dialer.db.models import CallLeg
    from dialer.telephony.twilio import TwilioProvider
    from server.app import create_app
    from tests.harness import listening_socket, url_of, world_for_app

    token = "fuzz-auth-token"
    nowhere = listening_socket()
    provider = TwilioProvider("AC" + "0" * 32, token, "http://testserver", api_base_url=url_of(nowhere),
                              timeout=0.2, retry_delays=(), price_delays=())

    async def seed(world: Any) -> None:
        lead = await world.submit(scheduled_for=world.clock.now() + timedelta(days=1))
        async with world.runtime.sessions() as session, session.begin():
            session.add(CallLeg(id="leg-fuzz", lead_id=lead.id, step="a1:m1", role="manager", manager_id=None,
                                to_number="+48221234567", status="ringing", created_at=world.clock.now()))

    world = world_for_app(database_url, then=seed)
    world.runtime.provider = provider
    world.runtime.engine.provider = provider
    app = create_app(runtime=world.runtime)
    with TestClient(app, base_url="http://testserver") as client:
        try:
            yield client, world, token
        finally:
            client.portal.call(provider.close)  # type: ignore[union-attr]
            client.portal.call(world.runtime.close)  # type: ignore[union-attr]
            nowhere.close()


def test_twilios_webhooks_signed_and_unsigned(twilio_app: tuple[Any, Any, str]) -> None:
    from twilio.request_validator import RequestValidator

    client, world, token = twilio_app
    validator = RequestValidator(token)
    public_url = world.runtime.settings.public_url  # what Twilio was given, and signs against
    seen: set[int] = set()
    hooks = st.sampled_from(["status", "whisper", "gather", "dial", "recording", "notice", "nope"])
    keys = st.sampled_from(["CallSid", "CallStatus", "Digits", "DialCallStatus", "DialCallSid", "DialCallDuration",
                            "RecordingUrl", "RecordingStatus", "CallDuration", "AnsweredBy", "Timestamp",
                            "SequenceNumber", "ErrorCode", "To", "From"]) | st.text(max_size=10)
    values = FORM_TEXT | st.sampled_from(["completed", "answered", "busy", "no-answer", "failed", "canceled",
                                          "ringing", "in-progress", "initiated", "1", "machine_start",
                                          "CA" + "a" * 32, "https://api.twilio.com/x"])
    legs = st.sampled_from(["leg-fuzz", "", "nope"]) | st.text(max_size=20)

    @FEW
    @given(hook=hooks, leg=legs, form=st.dictionaries(keys, values, max_size=6),
           signing=st.sampled_from(["signed", "unsigned", "wrong", "odd"]))
    def run(hook: str, leg: str, form: dict[str, str], signing: str) -> None:
        form = _quiet_hypothesis_strings(form)
        leg = leg.encode("utf-8", "backslashreplace").decode()
        path = f"/telephony/twilio/{hook}?leg={quote(leg, safe='')}"
        url = public_url + path
        signature = {"signed": validator.compute_signature(url, form), "unsigned": None,
                     "wrong": validator.compute_signature(url + "x", form), "odd": "é" * 28}[signing]
        headers = {} if signature is None else {"X-Twilio-Signature": signature.encode()}
        response = client.post(path, data=form, headers=headers)
        no_5xx(response, (path, form, signing))
        if signing != "signed":
            assert response.status_code in (403, 404, 405), (response.status_code, path)
        elif hook != "nope":
            seen.add(response.status_code)

    run()
    assert seen & {200, 204}, seen  # signed requests did reach the handlers
