"""Settings changes: validated as a whole with a message per field, written to the audit log, and seen by
the widget."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from dialer.db.models import AuditLog, Manager, Site
from server import demo
from tests.server.dashboard.conftest import OWNER, Dash, form_values

GOOD = {
    "name": "Shop & Co", "origins": "https://shop.example\nhttps://www.shop.example/", "country": "PL",
    "timezone": "Europe/Warsaw", "caller_id": "22 123 45 67", "routing": "sequential", "recording": "on",
    "consent_text": "", "business_hours": "mon-fri 09:00-18:00\nsat 10:00-14:00", "closed_dates": "2026-12-25",
    "window_start": "08:00", "window_end": "21:00", "text_button": "Call me", "text_title": "", "text_received": "",
    "colour_accent": "#0B6E4F", "colour_accent_text": "", "colour_panel": "", "colour_text": "",
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
           "colour_accent": "green", "origins": "https://shop.example/path"}
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
    assert site.settings["texts"] == {"button": "Call me"} and site.settings["colors"] == {"accent": "#0b6e4f"}
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


def test_what_the_owner_saves_is_what_the_widget_shows(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{dash.world.site.id}"
    saved = dash.post(path, {**GOOD, "colour_accent": "#5B21B6", "colour_accent_text": "#FFFFFF",
                             "colour_panel": "#fffbeb", "colour_text": "#1c1917", "text_title": "Ring me, Shop",
                             "text_received": "Thanks! We will ring you back soon."})
    assert saved.status_code == 303
    widget = dash.client.get("/api/v1/sites/shop/config", params={"lang": "en"}).json()
    assert widget["colors"] == {"accent": "#5b21b6", "accent_text": "#ffffff", "panel": "#fffbeb", "text": "#1c1917"}
    assert widget["texts"]["button"] == "Call me" and widget["texts"]["title"] == "Ring me, Shop"
    assert widget["texts"]["received"] == "Thanks! We will ring you back soon."  # shown once a message is sent
    # The form shows what was saved, under the same fields.
    shown = form_values(dash.client.get(path).text)
    assert shown["colour_accent"] == "#5b21b6" and shown["text_received"] == "Thanks! We will ring you back soon."


def test_the_demo_sites_own_settings_save_unchanged(dash: Dash) -> None:
    async def seed() -> Site:
        async with dash.world.runtime.sessions() as session, session.begin():
            return await demo.seed(session, dash.world.clock.now())

    site = dash.run(seed)
    assert site.settings["calling_window"] == ["00:00", "24:00"]
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{site.id}"
    values = form_values(dash.client.get(path).text)
    assert values["window_start"] == "00:00" and values["window_end"] == "24:00"
    response = dash.post(path, values)
    assert response.status_code == 303, response.text
    async def reread() -> Site:
        async with dash.world.runtime.sessions() as session:
            found = await session.get(Site, site.id)
            assert found is not None
            return found

    assert dash.run(reread).settings == site.settings
    assert _audit(dash) == []  # nothing changed, so nothing to audit


def test_hours_may_run_to_the_end_of_the_day_but_not_past_it(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{dash.world.site.id}"
    assert dash.post(path, {**GOOD, "business_hours": "mon-sun 18:00-24:00", "window_end": "24:00"}).status_code == 303
    assert _site(dash).settings["business_hours"]["sun"] == [["18:00", "24:00"]]
    for bad in ({"window_start": "24:00"}, {"window_end": "24:30"}, {"business_hours": "mon 24:00-24:00"}):
        assert dash.post(path, {**GOOD, **bad}).status_code == 422, bad


def test_the_allowed_countries_are_edited_by_name(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{dash.world.site.id}"
    page = dash.client.get(path).text
    assert form_values(page)["countries"] == "any"  # the test shop takes numbers from anywhere
    assert '<option value="Germany (DE)">' in page  # every country offered by name
    refused = dash.post(path, {**GOOD, "countries": "Poland, Narnia"})
    assert refused.status_code == 422 and "'Narnia' is not a country" in html.unescape(refused.text)
    saved = dash.post(path, {**GOOD, "countries": "Poland, DE, united kingdom"})
    assert saved.status_code == 303
    assert _site(dash).settings["abuse"]["countries"] == ["PL", "DE", "GB"]
    assert form_values(dash.client.get(path).text)["countries"] == "Poland (PL), Germany (DE), United Kingdom (GB)"
    # The widget's intake follows: a German number is accepted now, a French one is not.
    ok = dash.client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+4930901820", "timezone": "Europe/Berlin"})
    french = dash.client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+33142685300",
                                                         "timezone": "Europe/Paris"})
    assert french.status_code == 422, french.text
    assert ok.status_code != 422 or "country" not in ok.text
    anywhere = dash.post(path, {**GOOD, "countries": "any"})
    assert anywhere.status_code == 303 and _site(dash).settings["abuse"]["countries"] == "any"
    assert any(e.action == "site.update" for e in _audit(dash))


@pytest.mark.sqlite_only
def test_the_sms_sender_is_a_number_or_a_messaging_service_apart_from_the_caller_id(dash: Dash) -> None:
    assert dash.login(OWNER).status_code == 303
    path = f"/dashboard/sites/{dash.world.site.id}"
    response = dash.post(path, {**GOOD, "sms_sender": "texts please"})
    assert response.status_code == 422 and "Messaging Service SID" in response.text
    assert "sms_sender" not in (_site(dash).settings or {})
    service = "MG" + "ab" * 16
    assert dash.post(path, {**GOOD, "sms_sender": service}).status_code == 303
    site = _site(dash)
    assert site.settings["sms_sender"] == service and site.caller_id == "+48221234567"
    assert f'value="{service}"' in dash.client.get(path).text
    assert dash.post(path, {**GOOD, "sms_sender": "22 765 43 21"}).status_code == 303
    assert _site(dash).settings["sms_sender"] == "+48227654321"
    assert dash.post(path, {**GOOD, "sms_sender": ""}).status_code == 303
    assert "sms_sender" not in _site(dash).settings  # texts go from the caller ID again
