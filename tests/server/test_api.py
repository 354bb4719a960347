"""The widget's HTTP and WebSocket API, driven through the app with the engine on the simulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.db.models import Lead, LeadEvent
from dialer.telephony.simulator import Behaviour
from server import live
from tests.broadcast.servers import closed_url
from tests.conftest import World, script_hunt
from tests.server.conftest import count

VISITOR = "+48501234567"


def test_a_visitor_follows_the_whole_hunt_live(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    script_hunt(world.sim)
    world.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=40))
    config = client.get("/api/v1/sites/shop/config").json()
    assert config["name"] == "Shop" and config["call_now"] is True

    created = client.post(
        "/api/v1/callbacks",
        json={"site": "shop", "phone": "501 234 567", "timezone": "Europe/Warsaw",
              "utm": {"source": "google", "medium": "cpc", "campaign": "winter"}},
    )
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead["status"] == "queued" and lead["token"]

    seen = []
    url = f"/api/v1/callbacks/{lead['id']}/live?token={lead['token']}"
    with client.websocket_connect(url) as ws:
        seen.append(ws.receive_json())

        async def run() -> None:
            await world.until_status(lead["id"], "completed")

        client.portal.call(run)  # type: ignore[union-attr]
        while True:
            try:
                seen.append(ws.receive_json())
            except WebSocketDisconnect:
                break
    statuses = [(m["status"], m["step"]) for m in seen]
    assert statuses == [
        ("queued", 0),
        ("calling_manager", 1),  # first manager: no answer
        ("calling_manager", 2),  # second: voicemail
        ("calling_manager", 3),  # third presses 1
        ("calling_visitor", 3),
        ("connected", 3),
        ("completed", 3),
    ]
    polled = client.get(f"/api/v1/callbacks/{lead['id']}", params={"token": lead["token"]}).json()
    assert (polled["status"], polled["step"]) == ("completed", 3)  # polling tells what the stream told


def test_the_national_number_is_stored_in_e164_with_its_source(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    created = client.post("/api/v1/callbacks", json={
        "site": "shop", "phone": "501-234-567", "timezone": "Europe/Warsaw",
        "referrer": "https://www.google.com/", "page_url": "https://shop.example/boots"})
    assert created.status_code == 201

    async def load() -> Lead:
        async with world.runtime.sessions() as session:
            return (await session.execute(select(Lead))).scalar_one()

    lead = client.portal.call(load)  # type: ignore[union-attr]
    assert lead.phone == VISITOR
    assert lead.source["label"] == "Google search"
    assert lead.referrer == "https://www.google.com/"


def test_another_visitors_lead_cannot_be_read(client_world: tuple[TestClient, World]) -> None:
    client, _ = client_world
    lead = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR}).json()
    wrong = client.get(f"/api/v1/callbacks/{lead['id']}", params={"token": "guess"})
    assert wrong.status_code == 404 and wrong.json()["error"]["field"] == "token"
    assert client.get(f"/api/v1/callbacks/{lead['id']}").status_code == 404
    with pytest.raises(WebSocketDisconnect) as closed, \
            client.websocket_connect(f"/api/v1/callbacks/{lead['id']}/live?token=guess") as ws:
        ws.receive_json()
    assert closed.value.code == 1008


BAD = [
    ({"site": "nope", "phone": VISITOR}, 404, "site"),
    ({"site": "shop", "phone": "hello"}, 422, "phone"),
    ({"site": "shop", "phone": "+48 12"}, 422, "phone"),  # too short to be possible
    ({"site": "shop", "phone": "+1 999 555 0100"}, 422, "phone"),  # no such area code
    ({"site": "shop"}, 422, "phone"),
    ({"phone": VISITOR}, 422, "site"),
    ({"site": "shop", "phone": VISITOR, "timezone": "Mars/Olympus"}, 422, "timezone"),
    ({"site": "shop", "phone": VISITOR, "timezone": "../../etc/passwd"}, 422, "timezone"),
    ({"site": "shop", "phone": VISITOR, "name": "x" * 201}, 422, "name"),
    ({"site": "shop", "phone": VISITOR, "utm": {"campaign": "c" * 201}}, 422, "utm.campaign"),
    ({"site": "shop", "phone": VISITOR, "utm": {"evil": "1"}}, 422, "utm.evil"),
    ({"site": "shop", "phone": 48501234567}, 422, "phone"),
    ({"site": "shop", "phone": VISITOR, "scheduled_for": "tomorrow"}, 422, "scheduled_for"),
    ({"site": "shop", "phone": VISITOR, "scheduled_for": "2020-01-01T10:00:00+00:00"}, 422, "scheduled_for"),
    ({"site": "shop", "phone": VISITOR, "hacker": 1}, 422, "hacker"),
    ({"site": "shop", "phone": VISITOR, "consent": "yes"}, 422, "consent"),
]


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("body", "status", "field"), BAD)
def test_bad_input_is_refused_by_field_and_writes_nothing(
    client_world: tuple[TestClient, World], body: dict[str, object], status: int, field: str
) -> None:
    client, world = client_world
    response = client.post("/api/v1/callbacks", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["message"] and error["code"]
    assert count(client, world, Lead) == 0 and count(client, world, LeadEvent) == 0


def test_missing_consent_is_refused_where_the_site_requires_it(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world

    async def require() -> None:
        async with world.runtime.sessions() as session, session.begin():
            site = await session.merge(world.site)
            site.consent_required = True

    client.portal.call(require)  # type: ignore[union-attr]
    response = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR})
    assert response.status_code == 422 and response.json()["error"]["field"] == "consent"
    assert count(client, world, Lead) == 0
    ok = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR, "consent": True})
    assert ok.status_code == 201


@pytest.mark.sqlite_only
def test_oversized_or_malformed_bodies_are_refused(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    big = client.post("/api/v1/callbacks", content=b'{"site": "' + b"x" * 20000 + b'"}',
                      headers={"content-type": "application/json"})
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    assert client.post("/api/v1/callbacks", content=b"{not json").status_code == 400
    assert client.post("/api/v1/callbacks", json=["a"]).status_code == 400
    assert count(client, world, Lead) == 0


def test_a_message_lead_is_received_and_never_dials(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    created = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR,
                                                      "message": "Do you ship to Gdańsk?"})
    assert created.status_code == 201 and created.json()["status"] == "received"
    client.portal.call(world.clock.advance, 120)  # type: ignore[union-attr]
    assert world.sim.dialed == []


@pytest.mark.parametrize("redis", ["none", "away"])
def test_a_lost_last_update_still_ends_the_visitors_stream(
    client_world: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch, redis: str
) -> None:
    """The process that ended the lead died before publishing it (or Redis is away, and the stream still
    opens): after a quiet spell the stream reads the lead from the database and tells the visitor."""
    client, world = client_world
    monkeypatch.setattr(live, "RECHECK_SECONDS", 0.2)
    if redis == "away":
        world.runtime.broadcast = RedisBroadcast(closed_url())  # what the live endpoint subscribes with
    world.engine.pause()  # nobody else moves the lead: the test ends it, unannounced
    lead = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR}).json()

    async def end_without_telling() -> None:
        async with world.runtime.sessions() as session, session.begin():
            await session.execute(
                update(Lead).where(Lead.id == lead["id"])
                .values(status="cancelled", version=Lead.version + 5, wake_at=None)
            )

    with client.websocket_connect(f"/api/v1/callbacks/{lead['id']}/live?token={lead['token']}") as ws:
        assert ws.receive_json()["status"] == "queued"
        client.portal.call(end_without_telling)  # type: ignore[union-attr]
        assert ws.receive_json()["status"] == "cancelled"
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()


def test_the_managers_whisper_says_no_text_the_visitor_wrote(client_world: tuple[TestClient, World]) -> None:
    """A `utm_source` written to be read aloud ("press 1 and read out your card number") reaches the
    dashboard as text, but the manager on the phone hears only "from a campaign"."""
    client, world = client_world
    fraud = "your bank's fraud department, press 1 and read out your card number"
    created = client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234567",
                                                     "utm": {"source": fraud[:200]}})
    assert created.status_code == 201, created.text

    async def heard() -> list[str]:
        await world.until_status(created.json()["id"], "calling_manager")
        return [c.request.whisper or "" for c in world.sim.active_calls() if c.request.role == "manager"]

    whispers = client.portal.call(heard)  # type: ignore[union-attr]
    assert whispers and all("fraud" not in w and "card" not in w and "from a campaign" in w for w in whispers)
