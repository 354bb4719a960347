"""Settings changes: validated as a whole with a message per field, and written to the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dialer.db.models import AuditLog, Manager, Site
from tests.server.dashboard.conftest import OWNER, Dash

GOOD = {
    "name": "Shop & Co", "origins": "https://shop.example\nhttps://www.shop.example/", "country": "PL",
    "timezone": "Europe/Warsaw", "caller_id": "22 123 45 67", "routing": "sequential", "recording": "on",
    "consent_text": "", "business_hours": "mon-fri 09:00-18:00\nsat 10:00-14:00", "closed_dates": "2026-12-25",
    "window_start": "08:00", "window_end": "21:00", "text_button": "Call me", "text_title": "", "text_thanks": "",
    "colour_button": "#0B6E4F", "colour_text": "",
}


def _site(dash: Dash) -> Site:
    async def go() -> Site:
        async with dash.world.runtime.sessions() as session:
            found = await session.get(Site, dash.world.site.id)
            assert found is not None
            return found

    return dash.run(go)


def _audit(dash: Dash) -> list[AuditLog]:
    async def go() -> list[AuditLog]:
        async with dash.world.runtime.sessions() as session:
            query = select(AuditLog).where(AuditLog.action != "login").order_by(AuditLog.id)
            return list((await session.execute(query)).scalars())

    return dash.run(go)


@pytest.mark.sqlite_only
def test_a_bad_settings_change_is_refused_field_by_field_and_saves_nothing(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{dash.world.site.id}"
    bad = {**GOOD, "timezone": "Mars/Olympus", "business_hours": "mon 18:00-09:00", "window_end": "25:00",
           "colour_button": "green", "origins": "https://shop.example/path"}
    response = dash.post(path, bad)
    assert response.status_code == 422
    text = response.text
    assert "Nothing was saved: 5 fields to fix" in text
    assert "&#39;Mars/Olympus&#39; is not a time zone name" in text
    assert "the end comes before the start" in text
    assert "24-hour times" in text and "#RRGGBB" in text and "no path" in text
    assert 'value="Shop &amp; Co"' in text  # what was typed is kept for correcting
    site = _site(dash)
    assert site.name == "Shop" and site.timezone == "Europe/Warsaw" and site.recording is False
    assert _audit(dash) == []


def test_a_good_settings_change_is_saved_and_audited(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{dash.world.site.id}"
    response = dash.post(path, GOOD)
    assert response.status_code == 303 and response.headers["location"].endswith("?saved=1")
    site = _site(dash)
    assert site.name == "Shop & Co" and site.recording is True and site.caller_id == "+48221234567"
    assert site.origins == ["https://shop.example", "https://www.shop.example"]
    assert site.settings["business_hours"]["mon"] == [["09:00", "18:00"]]
    assert site.settings["business_hours"]["sat"] == [["10:00", "14:00"]]
    assert site.settings["business_hours"]["sun"] == []
    assert site.settings["closed_dates"] == ["2026-12-25"]
    assert site.settings["calling_window"] == ["08:00", "21:00"]
    assert site.settings["texts"] == {"button": "Call me"} and site.settings["colors"] == {"button": "#0b6e4f"}
    [entry] = _audit(dash)
    assert entry.actor == OWNER and entry.action == "site.update" and entry.site_id == site.id
    assert entry.detail["name"] == ["Shop", "Shop & Co"] and entry.detail["recording"] == [False, True]
    page = dash.client.get("/dashboard/audit").text
    assert "site.update" in page and "Shop &amp; Co" in page
    # Saving the same values again changes nothing and writes no audit line.
    dash.post(path, GOOD)
    assert len(_audit(dash)) == 1


def test_managers_are_added_and_changed_with_validation_and_audit(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{dash.world.site.id}/managers"
    bad = dash.post(path, {"name": "Zofia", "phone": "12", "position": "x", "working_hours": "someday 9-5",
                           "active": "on"})
    assert bad.status_code == 422
    assert "not valid" in bad.text or "phone number" in bad.text
    assert "whole number" in bad.text and "is not a day" in bad.text
    added = dash.post(path, {"name": "Zofia", "phone": "601 234 567", "position": "4",
                             "working_hours": "mon-fri 08:00-16:00", "active": "on"})
    assert added.status_code == 303

    async def zofia() -> Manager:
        async with dash.world.runtime.sessions() as session:
            return (await session.execute(select(Manager).where(Manager.name == "Zofia"))).scalar_one()

    manager = dash.run(zofia)
    assert manager.phone == "+48601234567" and manager.working_hours["fri"] == [["08:00", "16:00"]]
    changed = dash.post(path, {"manager_id": str(manager.id), "name": "Zofia", "phone": "+48601234567",
                               "position": "4", "working_hours": ""})  # unticked: inactive
    assert changed.status_code == 303
    manager = dash.run(zofia)
    assert manager.active is False and manager.working_hours is None
    actions = [(e.action, sorted(e.detail)) for e in _audit(dash)]
    assert actions[0][0] == "manager.add"
    assert actions[1] == ("manager.update", ["active", "working_hours"])
