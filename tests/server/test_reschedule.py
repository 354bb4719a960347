"""The page a visitor reaches from the text after a missed call: picking a new time, and what it refuses."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World

VISITOR = "+48501234567"


def _missed(client: TestClient, world: World) -> str:
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())

    async def go() -> str:
        lead = await world.submit(VISITOR)
        await world.until_status(lead.id, "missed")
        return lead.id

    return client.portal.call(go)  # type: ignore[union-attr, no-any-return]


def test_a_missed_visitor_picks_one_of_the_offered_times(client_world: tuple[TestClient, World]) -> None:
    client, world = client_world
    lead_id = _missed(client, world)
    sig = world.engine.notices.signature(lead_id)
    page = client.get(f"/callback/{lead_id}", params={"sig": sig})
    assert page.status_code == 200
    offered = re.findall(r"name=start value='([^']+)'", page.text)
    assert offered
    booked = client.post(f"/callback/{lead_id}", data={"sig": sig, "start": offered[2]})
    assert booked.status_code == 200 and "Thank you" in booked.text
    assert client.portal.call(world.lead, lead_id).status == "scheduled"  # type: ignore[union-attr]


@pytest.mark.parametrize("start", [
    "2026-11-24T10:00:00",  # no UTC offset
    "9999-12-31T23:30:00-01:00",  # past the year 9999 once in UTC
    "0001-01-01T00:30:00+01:00",  # before the year 1 once in UTC
    "tomorrow",
    "",
])
def test_a_time_that_cannot_be_booked_is_a_422_naming_the_field(
    client_world: tuple[TestClient, World], start: str
) -> None:
    client, world = client_world
    lead_id = _missed(client, world)
    sig = world.engine.notices.signature(lead_id)
    refused = client.post(f"/callback/{lead_id}", data={"sig": sig, "start": start})
    assert refused.status_code == 422, refused.text
    assert re.search(r"<p role=alert data-field=start>[A-Z][^<]+\.</p>", refused.text)
    assert client.portal.call(world.lead, lead_id).status == "missed"  # type: ignore[union-attr]


@pytest.mark.parametrize("start", [
    "9999-12-31T23:59:00+00:00",  # in range, but the call would end past the year 9999
    "9999-12-31T23:59:59.999999+14:00",
    "2026-11-24T10:00:00\x00",
    "２０２６-11-24T10:00:00+01:00",  # full-width digits
    "x" * 5000,
])
def test_hostile_times_are_refused_with_a_4xx(client_world: tuple[TestClient, World], start: str) -> None:
    client, world = client_world
    lead_id = _missed(client, world)
    sig = world.engine.notices.signature(lead_id)
    refused = client.post(f"/callback/{lead_id}", data={"sig": sig, "start": start})
    assert 400 <= refused.status_code < 500, refused.text
    assert client.portal.call(world.lead, lead_id).status == "missed"  # type: ignore[union-attr]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("sig", ["é" * 32, "\u202e" + "a" * 31, "%00", "a" * 3000])
def test_a_signature_of_any_text_is_a_404_not_a_500(client_world: tuple[TestClient, World], sig: str) -> None:
    client, world = client_world
    lead_id = _missed(client, world)
    assert client.get(f"/callback/{lead_id}", params={"sig": sig}).status_code == 404
    assert client.post(f"/callback/{lead_id}", data={"sig": sig, "start": "x"}).status_code == 404
    for path in ("/callback/" + "é" * 40, "/callback/%00", "/callback/" + "a" * 3000):
        assert client.get(path, params={"sig": sig}).status_code == 404
