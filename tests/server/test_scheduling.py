"""Scheduling through the API: the config's slots, picking a time, off-hours promises, new times."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from dialer.db.models import Lead, Site
from tests.conftest import World
from tests.server.conftest import client_for, count

WARSAW = ZoneInfo("Europe/Warsaw")
VISITOR = "+48501234567"
EVENING = datetime(2026, 11, 23, 23, 30, tzinfo=WARSAW).astimezone(UTC)  # a Monday, after hours


@pytest.fixture
def evening(database_url: str) -> Iterator[tuple[TestClient, World]]:
    yield from client_for(database_url, start=EVENING)


def test_after_hours_the_config_offers_slots_and_no_call_now(evening: tuple[TestClient, World]) -> None:
    client, _ = evening
    config = client.get("/api/v1/sites/shop/config", params={"timezone": "Europe/Warsaw"}).json()
    assert config["call_now"] is False
    assert datetime.fromisoformat(config["next_call_at"]) == datetime(2026, 11, 24, 8, 0, tzinfo=WARSAW)
    starts = [datetime.fromisoformat(s["start"]) for s in config["slots"]]
    assert len(starts) == 12 and starts == sorted(starts)
    assert starts[0] == datetime(2026, 11, 24, 8, 0, tzinfo=WARSAW)
    assert all(8 <= s.astimezone(WARSAW).hour < 22 for s in starts)


def test_the_visitor_is_told_when_an_off_hours_request_will_be_called(evening: tuple[TestClient, World]) -> None:
    client, world = evening
    created = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR, "timezone": "Europe/Warsaw"})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "scheduled"
    assert datetime.fromisoformat(body["scheduled_for"]) == datetime(2026, 11, 24, 8, 0, tzinfo=WARSAW)
    client.portal.call(world.clock.advance, 0)  # type: ignore[union-attr]
    assert "Tue 24 Nov, 08:00" in world.sim.texts[0].body


@pytest.mark.parametrize(
    ("when", "code"),
    [
        (EVENING - timedelta(hours=1), "in_past"),
        (datetime(2026, 11, 24, 3, 0, tzinfo=WARSAW), "slot_unavailable"),  # the middle of the night
    ],
)
def test_a_time_in_the_past_or_outside_hours_is_refused_by_field(
    evening: tuple[TestClient, World], when: datetime, code: str
) -> None:
    client, world = evening
    response = client.post("/api/v1/callbacks", json={
        "site": "shop", "phone": VISITOR, "timezone": "Europe/Warsaw", "scheduled_for": when.isoformat()})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "scheduled_for" and response.json()["error"]["code"] == code
    assert count(client, world, Lead) == 0


def test_a_picked_slot_is_kept_and_a_full_slot_is_refused(evening: tuple[TestClient, World]) -> None:
    client, world = evening
    slot = client.get("/api/v1/sites/shop/config").json()["slots"][3]["start"]
    for i in range(3):  # three managers: room for three callbacks per slot
        made = client.post("/api/v1/callbacks", json={
            "site": "shop", "phone": f"+4850123456{i}", "timezone": "Europe/Warsaw", "scheduled_for": slot})
        assert made.status_code == 201 and made.json()["scheduled_for"] == slot
    full = client.post("/api/v1/callbacks", json={
        "site": "shop", "phone": "+48501234569", "timezone": "Europe/Warsaw", "scheduled_for": slot})
    assert full.status_code == 422 and "fully booked" in full.json()["error"]["message"]
    offered = [s["start"] for s in client.get("/api/v1/sites/shop/config").json()["slots"]]
    assert slot not in offered


def test_a_missed_visitor_picks_a_new_time_from_the_link(evening: tuple[TestClient, World]) -> None:
    client, world = evening
    from dialer.telephony.simulator import Behaviour
    from tests.conftest import MANAGER_PHONES

    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())
    lead = client.post("/api/v1/callbacks", json={"site": "shop", "phone": VISITOR}).json()

    async def until_missed() -> None:
        await world.until_status(lead["id"], "missed", limit=12 * 3600)

    client.portal.call(until_missed)  # type: ignore[union-attr]
    link = re.search(r"https?://\S+", world.sim.texts[-1].body)
    assert link is not None
    path = link.group(0).split("8000", 1)[1]
    assert client.get(path.replace("sig=", "sig=0")).status_code == 404  # a forged link shows nothing
    page = client.get(path)
    assert page.status_code == 200 and "Pick a time" in page.text
    start = re.findall(r"value='([^']+)'", page.text)[1]
    sig = path.split("sig=")[1]
    booked = client.post(path.split("?")[0], data={"sig": sig, "start": start})
    assert booked.status_code == 200 and "We will call you" in booked.text
    status = client.get(f"/api/v1/callbacks/{lead['id']}", params={"token": lead["token"]}).json()
    assert status["status"] == "scheduled" and status["scheduled_for"] == start and status["attempt"] == 2


def test_a_site_without_managers_has_nothing_to_offer(evening: tuple[TestClient, World]) -> None:
    client, world = evening

    async def fire_all() -> None:
        from sqlalchemy import update

        from dialer.db.models import Manager
        async with world.runtime.sessions() as session, session.begin():
            await session.execute(update(Manager).values(active=False))

    client.portal.call(fire_all)  # type: ignore[union-attr]
    config = client.get("/api/v1/sites/shop/config").json()
    assert config["call_now"] is False and config["slots"] == []
    assert count(client, world, Site) == 1
