"""A manager sees their own sites' leads only, everywhere: list, lead page, CSV, costs, live, settings."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from dialer.engine.status import site_channel
from tests.server.dashboard.conftest import ANNA, BOB, OWNER, Dash
from tests.server.dashboard.test_costs import seed

# Who sees what: the database does not change it (the report queries are tried on both in test_costs).
pytestmark = pytest.mark.sqlite_only


def test_a_manager_does_not_see_another_sites_leads(dash: Dash) -> None:
    ids = seed(dash)
    assert dash.login(BOB).status_code == 303
    listing = dash.client.get("/dashboard/leads").text
    assert ids["other"] in listing and ids["won"] not in listing and ids["missed"] not in listing
    assert dash.client.get(f"/dashboard/leads/{ids['won']}").status_code == 404
    assert dash.client.get(f"/dashboard/leads/{ids['other']}").status_code == 200
    # Asking for the shop by its id in the filter shows nothing of it either.
    filtered = dash.client.get("/dashboard/leads", params={"site": str(dash.world.site.id)}).text
    assert ids["won"] not in filtered
    exported = dash.client.get("/dashboard/leads.csv").text
    assert ids["other"] in exported and ids["won"] not in exported
    costs = dash.client.get("/dashboard/costs", params={"period": "today"}).text
    assert 'data-figure="leads">1<' in costs and "Google Ads" not in costs
    refused = dash.post(f"/dashboard/leads/{ids['missed']}/handled", {}, page="/dashboard/leads")
    assert refused.status_code == 404
    # Settings are the owner's.
    assert dash.client.get(f"/dashboard/sites/{dash.other.id}").status_code == 403
    assert dash.client.get("/dashboard/audit").status_code == 403


def test_an_owner_sees_every_site(dash: Dash) -> None:
    ids = seed(dash)
    assert dash.login(OWNER).status_code == 303
    listing = dash.client.get("/dashboard/leads").text
    assert all(lead_id in listing for lead_id in ids.values())


def test_the_live_socket_carries_only_the_managers_sites(dash: Dash) -> None:
    ids = seed(dash)
    with pytest.raises(WebSocketDisconnect), dash.client.websocket_connect("/dashboard/live/ws") as ws:
        ws.receive_json()  # not signed in
    assert dash.login(ANNA).status_code == 303
    with dash.client.websocket_connect("/dashboard/live/ws") as ws:
        broadcast = dash.world.runtime.broadcast

        async def publish() -> None:
            await broadcast.publish(site_channel(dash.other.id), {"id": ids["other"], "status": "queued"})
            await broadcast.publish(site_channel(dash.world.site.id), {"id": ids["won"], "status": "queued"})

        assert ws.receive_json() == {"type": "ready", "sites": [dash.world.site.id]}
        dash.run(publish)
        assert ws.receive_json()["id"] == ids["won"]  # the other site's message never arrived first

