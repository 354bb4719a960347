"""In real Chromium: the live board changes a lead's status in place as the engine moves it, without a
reload; screenshots of the main pages go to test-output/dashboard/."""

from __future__ import annotations

from typing import Any

import pytest

from dialer.telephony.simulator import Behaviour
from tests.harness import LiveServer, script_hunt
from tests.server.dashboard.conftest import shot, sign_in

VISITOR = "+48501234567"

pytestmark = pytest.mark.browser


def test_the_live_board_follows_a_lead_without_reloading(
    live: LiveServer, browser: Any, request: pytest.FixtureRequest
) -> None:
    from playwright.sync_api import expect

    db = request.node.callspec.params["database_url"]
    world = live.world
    script_hunt(world.sim)
    world.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=70))
    lead = live.call(world.submit(VISITOR, utm={"source": "google", "medium": "cpc", "campaign": "winter"}))

    page = browser.new_page(viewport={"width": 390, "height": 844})  # a manager's phone
    sign_in(page, live.url)
    status = page.locator(f'#today [data-lead="{lead.id}"] [data-status]')
    expect(status).to_have_text("queued")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")

    live.call(world.clock.advance(0))  # the engine takes the lead: the first manager is rung
    expect(status).to_have_text("calling manager")
    expect(page.locator(f'#calling [data-lead="{lead.id}"]')).to_have_count(1)
    shot(page, f"live-calling-{db}")

    live.call(world.until_status(lead.id, "connected"))
    expect(status).to_have_text("connected")
    live.call(world.until_status(lead.id, "completed"))
    expect(status).to_have_text("completed")
    expect(page.locator(f'#calling [data-lead="{lead.id}"]')).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True
    live.call(world.clock.advance(10))  # prices arrive
    shot(page, f"live-mobile-{db}")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live.url}/dashboard/leads")
    expect(page.locator(f'[data-lead="{lead.id}"]')).to_have_count(1)
    shot(page, f"leads-{db}")
    page.click(f'[data-lead="{lead.id}"] a')
    expect(page.locator("#legs")).to_contain_text("Pressed 1")
    shot(page, f"lead-{db}")
    page.goto(f"{live.url}/dashboard/costs?period=today")
    expect(page.locator('[data-figure="leads"]')).to_have_text("1")
    shot(page, f"costs-{db}")
    page.goto(f"{live.url}/dashboard/sites/{world.site.id}")
    shot(page, f"site-settings-{db}")
    page.goto(f"{live.url}/dashboard/sites/{world.site.id}/managers")
    shot(page, f"managers-{db}")
