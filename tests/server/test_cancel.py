"""The visitor cancels their request from the widget (`DELETE /api/v1/callbacks/{id}?token=…`): calls
being placed for it are hung up, nobody is rung for it again, and its status says so."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dialer.db.models import CallLeg, LeadEvent
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World

VISITOR = "+48501234567"


def _create(client: TestClient, **fields: Any) -> dict[str, Any]:
    created = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR, **fields})
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def _cancel(client: TestClient, lead: dict[str, Any], token: str | None = None, **headers: str) -> Any:
    return client.delete(f"/api/v1/callbacks/{lead['id']}", params={"token": token or lead["token"]}, headers=headers)


def _legs(client: TestClient, world: World, lead_id: str) -> list[CallLeg]:
    async def go() -> list[CallLeg]:
        async with world.runtime.sessions() as session:
            return list((await session.execute(select(CallLeg).where(CallLeg.lead_id == lead_id))).scalars())

    return client.portal.call(go)  # type: ignore[union-attr, no-any-return]


def test_cancelling_while_a_manager_is_rung_hangs_up_and_rings_nobody_else(
    client_world: tuple[TestClient, World],
) -> None:
    client, world = client_world
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())
    lead = _create(client)
    client.portal.call(world.until_status, lead["id"], "calling_manager")  # type: ignore[union-attr]
    assert len(world.sim.active_calls()) == 1  # the first manager's phone is ringing

    with client.websocket_connect(f"/api/v1/callbacks/{lead['id']}/live?token={lead['token']}") as ws:
        assert ws.receive_json()["status"] == "calling_manager"
        cancelled = _cancel(client, lead)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        pushed = [ws.receive_json()]
        try:
            while True:
                pushed.append(ws.receive_json())
        except WebSocketDisconnect:
            pass
    assert pushed[-1]["status"] == "cancelled"  # the widget's live view is told

    client.portal.call(world.clock.advance, 0)  # type: ignore[union-attr]  # the hang-up's report
    assert world.sim.active_calls() == []
    [leg] = _legs(client, world, lead["id"])
    assert leg.end_reason == "canceled" and leg.ended_at is not None
    dialed = len(world.sim.dialed)
    client.portal.call(world.clock.advance, 600)  # type: ignore[union-attr]
    assert len(world.sim.dialed) == dialed  # no next manager, no visitor
    polled = client.get(f"/api/v1/callbacks/{lead['id']}", params={"token": lead["token"]}).json()
    assert polled["status"] == "cancelled"


def test_a_scheduled_request_can_be_cancelled_and_is_never_called(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    slot = client.get("/api/v1/sites/shop/config").json()["slots"][1]["start"]
    lead = _create(client, scheduled_for=slot, timezone="Europe/Warsaw")
    assert lead["status"] == "scheduled"
    assert _cancel(client, lead).json()["status"] == "cancelled"
    client.portal.call(world.clock.advance, 3 * 3600)  # type: ignore[union-attr]
    assert world.sim.dialed == []

    async def timeline() -> list[str]:
        async with world.runtime.sessions() as session:
            query = select(LeadEvent.status).where(LeadEvent.lead_id == lead["id"]).order_by(LeadEvent.id)
            return [s for s in (await session.execute(query)).scalars() if s]

    assert client.portal.call(timeline)[-1] == "cancelled"  # type: ignore[union-attr]


def test_a_request_that_is_over_cannot_be_cancelled(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    lead = _create(client)
    assert _cancel(client, lead).status_code == 200
    again = _cancel(client, lead)
    assert again.status_code == 409
    assert again.json()["error"] == {"code": "already_over", "message": "This request was cancelled already."}
    message = _create(client, message="Please call me about boots")
    refused = _cancel(client, message)
    assert refused.status_code == 409 and "nothing to cancel" in refused.json()["error"]["message"]
    assert client.portal.call(world.lead, message["id"]).status == "received"  # type: ignore[union-attr]


def test_only_the_token_holder_can_cancel(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    lead = _create(client)
    wrong = _cancel(client, lead, token="guess")
    assert wrong.status_code == 404 and wrong.json()["error"]["field"] == "token"
    assert client.delete(f"/api/v1/callbacks/{lead['id']}").status_code == 404
    assert client.portal.call(world.lead, lead["id"]).status != "cancelled"  # type: ignore[union-attr]


def test_cancelling_works_across_origins_like_the_rest_of_the_api(client_world: tuple[TestClient, World]) -> None:
    client, _ = client_world
    lead = _create(client)
    preflight = client.options(f"/api/v1/callbacks/{lead['id']}", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "DELETE"})
    assert preflight.status_code == 204
    assert "DELETE" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    cancelled = _cancel(client, lead, origin="https://shop.example")
    assert cancelled.status_code == 200
    assert cancelled.headers["access-control-allow-origin"] == "https://shop.example"
