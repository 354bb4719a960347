"""A lead's page in use: "call back now" on a missed lead (the signed-in manager first), "cancel", "mark
handled", and the recording proxy."""

from __future__ import annotations

import io
import re

import pytest

from dialer.core.states import LegRole
from dialer.db.models import CallLeg, Lead, Site
from dialer.telephony.simulator import Behaviour
from server import cli
from tests.conftest import MANAGER_PHONES
from tests.server.dashboard.conftest import ANNA, OWNER, PASSWORD, Dash

VISITOR = "+48501234567"


def _missed_lead(dash: Dash) -> str:
    world = dash.world
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())

    async def go() -> str:
        lead = await world.submit(VISITOR)
        await world.until_status(lead.id, "missed")
        return lead.id

    return dash.run(go)


def test_call_back_now_rings_the_chosen_manager_first_then_the_visitor(dash: Dash) -> None:
    lead_id = _missed_lead(dash)
    world = dash.world
    assert dash.login(ANNA).status_code == 303
    page = dash.client.get(f"/dashboard/leads/{lead_id}").text
    assert "Call back now" in page and "Mark handled" in page
    third = re.search(r'<option value="(\d+)"[^>]*>M3</option>', page)
    assert third
    world.sim.script(MANAGER_PHONES[2], Behaviour.presses_1(after=3))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    dialed_before = len(world.sim.dialed)
    done = dash.post(f"/dashboard/leads/{lead_id}/call-back", {"manager_id": third.group(1)},
                     page=f"/dashboard/leads/{lead_id}")
    assert done.status_code == 303
    told = dash.client.get(done.headers["location"]).text
    assert "M3’s phone rings first; when they press 1, Ringback calls the visitor." in told
    lead = dash.run(world.until_status, lead_id, "completed")
    again = world.sim.dialed[dialed_before:]
    assert [d.to for d in again] == [MANAGER_PHONES[2], VISITOR]
    assert lead.attempt == 2 and lead.handled_at is not None and lead.handled_by == ANNA
    after = dash.client.get(f"/dashboard/leads/{lead_id}").text
    assert "call back now: requested by a manager" in after and "Mark handled" not in after
    # Each call is named for a person, not by its internal step code ("a2:m3").
    assert "Attempt 2, manager M3" in after and "Attempt 2, the visitor (for M3)" in after
    assert not re.search(r">a\d+:(v:)?m\d+<", after)


def test_mark_handled_takes_a_missed_lead_off_the_live_board(dash: Dash) -> None:
    lead_id = _missed_lead(dash)
    assert dash.login(OWNER).status_code == 303
    board = dash.client.get("/dashboard/").text
    waiting = board[board.index('id="unhandled"'):board.index('id="today"')]
    assert lead_id in waiting
    assert dash.post(f"/dashboard/leads/{lead_id}/handled", {}, page=f"/dashboard/leads/{lead_id}").status_code == 303
    board = dash.client.get("/dashboard/").text
    assert lead_id not in board[board.index('id="unhandled"'):board.index('id="today"')]
    lead = dash.run(dash.world.lead, lead_id)
    assert lead.handled_by == OWNER


@pytest.mark.parametrize("report", ["reported", "report lost"])
def test_the_recording_plays_through_the_dashboard_without_exposing_its_address(dash: Dash, report: str) -> None:
    world = dash.world
    # A lost report: the recording is looked up on the network a minute after the call (`engine/jobs.py`).
    world.sim.lose_recording_reports = report == "report lost"

    async def record() -> None:
        async with world.runtime.sessions() as session, session.begin():
            site = await session.get(Site, world.site.id)
            assert site is not None
            site.recording = True

    dash.run(record)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=20))

    async def go() -> tuple[str, CallLeg]:
        lead = await world.submit(VISITOR)
        await world.until_status(lead.id, "completed")
        await world.clock.advance(70)  # the recording is ready a few seconds after the call
        async with world.runtime.sessions() as session:
            from sqlalchemy import select

            leg = (await session.execute(select(CallLeg).where(
                CallLeg.lead_id == lead.id, CallLeg.role == LegRole.VISITOR))).scalar_one()
        return lead.id, leg

    lead_id, leg = dash.run(go)
    assert leg.recording_url
    assert dash.client.get(f"/dashboard/recordings/{leg.id}", follow_redirects=False).status_code == 303
    assert dash.login(OWNER).status_code == 303
    page = dash.client.get(f"/dashboard/leads/{lead_id}").text
    assert f'<audio controls preload="none" src="/dashboard/recordings/{leg.id}">' in page
    assert leg.recording_url not in page
    audio = dash.client.get(f"/dashboard/recordings/{leg.id}")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and len(audio.content) > 1000


def test_a_lead_of_the_shop_cannot_be_called_back_by_the_other_sites_manager(dash: Dash) -> None:
    lead_id = _missed_lead(dash)
    assert dash.login("bob@other.example").status_code == 303
    refused = dash.post(f"/dashboard/leads/{lead_id}/call-back", {"manager_id": "1"}, page="/dashboard/leads")
    assert refused.status_code == 404
    lead: Lead = dash.run(dash.world.lead, lead_id)
    assert lead.status == "missed" and lead.attempt == 1


def test_a_manager_cancels_a_request_while_it_is_being_rung(dash: Dash) -> None:
    world = dash.world
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())

    async def ringing() -> str:
        lead = await world.submit(VISITOR)
        await world.until_status(lead.id, "calling_manager")
        return lead.id

    lead_id = dash.run(ringing)
    assert len(world.sim.active_calls()) == 1
    assert dash.login(ANNA).status_code == 303
    page = dash.client.get(f"/dashboard/leads/{lead_id}").text
    assert f'action="/dashboard/leads/{lead_id}/cancel"' in page
    forged = dash.client.post(f"/dashboard/leads/{lead_id}/cancel", data={"csrf": "forged"})
    assert forged.status_code == 403 and dash.run(world.lead, lead_id).status == "calling_manager"

    done = dash.post(f"/dashboard/leads/{lead_id}/cancel", {}, page=f"/dashboard/leads/{lead_id}")
    assert done.status_code == 303 and done.headers["location"].endswith("?done=cancelled")
    dash.run(world.clock.advance, 0)
    assert dash.run(world.lead, lead_id).status == "cancelled"
    assert world.sim.active_calls() == []  # the ringing manager's leg was hung up
    after = dash.client.get(done.headers["location"]).text
    assert "Cancelled: nobody will be called" in after and f"cancelled by {ANNA} on the dashboard" in after
    assert f'/dashboard/leads/{lead_id}/cancel"' not in after
    again = dash.post(f"/dashboard/leads/{lead_id}/cancel", {}, page=f"/dashboard/leads/{lead_id}")
    assert again.status_code == 409 and "nothing left to cancel" in again.text


def test_call_back_now_offers_the_signed_in_managers_own_phone_first(
    dash: Dash, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user added with `ringback user add --manager` is that manager on the lead page."""
    monkeypatch.setenv("RINGBACK_DATABASE_URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["user", "add", "--email", "carol@shop.example", "--role", "manager", "--site", "shop",
                     "--manager", "M2"]) == 0
    lead_id = _missed_lead(dash)
    assert dash.login("carol@shop.example").status_code == 303
    page = dash.client.get(f"/dashboard/leads/{lead_id}").text
    assert re.findall(r'<option value="\d+" selected>(\w+) \(you\)</option>', page) == ["M2"]
    assert "The manager picked here is rung first; when they press 1, Ringback calls the visitor" in page
    assert dash.login(ANNA).status_code == 303  # not linked to a manager: nobody is preselected
    choice = dash.client.get(f"/dashboard/leads/{lead_id}").text.split('name="manager_id"')[1].split("</select>")[0]
    assert "selected" not in choice and ">M2<" in choice


def test_the_lead_page_lists_its_text_messages_and_what_became_of_them(dash: Dash) -> None:
    lead_id = _missed_lead(dash)
    assert dash.login(ANNA).status_code == 303
    page = dash.client.get(f"/dashboard/leads/{lead_id}").text
    table = page.split('<table id="texts">', 1)[1].split("</table>", 1)[0]
    assert "<td>missed</td>" in table and "queued" in table  # handed to the provider, no delivery news yet
    assert "text message (missed) accepted by the provider" in page
