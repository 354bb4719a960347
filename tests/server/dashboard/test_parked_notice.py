"""A lead the engine parked (its step kept failing) is shown to the owners on the live board and the
leads page, with its id; its own page says why it stopped. Managers are not shown the notice."""

from __future__ import annotations

from tests.server.dashboard.conftest import ANNA, OWNER, Dash


def test_the_owner_is_shown_a_parked_lead(dash: Dash) -> None:
    created = dash.client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234567",
                                                          "timezone": "Europe/Warsaw"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]

    async def park() -> bool:
        return await dash.world.engine.parking.park(lead_id, "KeyError")

    assert dash.run(park)
    assert dash.login(OWNER).status_code == 303
    for path in ("/dashboard/", "/dashboard/leads"):
        page = dash.client.get(path).text
        assert "Leads stopped after repeated errors" in page and lead_id in page, path
    assert "KeyError" in dash.client.get(f"/dashboard/leads/{lead_id}").text
    assert dash.login(ANNA).status_code == 303
    assert "Leads stopped after repeated errors" not in dash.client.get("/dashboard/").text
