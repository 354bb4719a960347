"""End to end in real Chromium: what an owner saves in the dashboard is what visitors' widgets show."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from dialer.accounts.users import add_user
from dialer.db.models import Site
from server import demo
from tests.widget.conftest import LiveServer, shadow

pytestmark = pytest.mark.browser

OWNER, PASSWORD = "owner@demo.example", "correct horse battery"


def _owner_and_demo_site(live: LiveServer) -> int:
    async def go() -> int:
        async with live.runtime.sessions() as session, session.begin():
            await add_user(session, email=OWNER, password=PASSWORD, role="owner", now=live.clock.now())
            return (await session.execute(select(Site.id).where(Site.key == demo.DEMO_KEY))).scalar_one()

    return live.call(go)  # type: ignore[no-any-return]


def test_a_colour_and_a_text_saved_in_the_dashboard_reach_the_widget(live: LiveServer, visitor: Any) -> None:
    site_id = _owner_and_demo_site(live)
    profile = visitor()
    before = profile.page()
    before.goto(live.url + "/demo")
    expect(before.get_by_role("button", name="Call me back")).to_be_visible()  # the widget's defaults

    owner = profile.page()
    owner.goto(live.url + "/dashboard/login")
    owner.get_by_label("Email").fill(OWNER)
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Sign in").click()
    owner.goto(f"{live.url}/dashboard/sites/{site_id}")
    owner.get_by_label("Button colour", exact=True).fill("#7c2d12")
    owner.get_by_label("Button label", exact=True).fill("Ring me, please")
    owner.get_by_label("Panel title", exact=True).fill("A human will call you")
    owner.get_by_role("button", name="Save").click()
    expect(owner.get_by_role("status")).to_have_text("Saved.")

    page = profile.page()
    page.goto(live.url + "/demo")
    button = page.get_by_role("button", name="Ring me, please")
    expect(button).to_be_visible()
    assert shadow(page, ".b").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(124, 45, 18)"
    button.click()
    expect(page.get_by_role("dialog", name="A human will call you")).to_be_visible()
