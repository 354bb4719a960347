"""In real Chromium: the live board changes a lead's status in place as the engine moves it, without a
reload; screenshots of the main pages go to test-output/dashboard/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dialer.accounts.users import add_user
from dialer.sites.admin import add_site
from dialer.telephony.simulator import Behaviour
from tests.harness import LiveServer, World, script_hunt, world_for_app
from tests.server.dashboard.conftest import OWNER, PASSWORD

SHOTS = Path(__file__).resolve().parents[3] / "test-output" / "dashboard"
VISITOR = "+48501234567"

pytestmark = pytest.mark.browser


async def _owner_and_other_site(world: World) -> None:
    async with world.runtime.sessions() as session, session.begin():
        await add_user(session, email=OWNER, password=PASSWORD, role="owner", now=world.clock.now())
        await add_site(session, name="Other shop", key="other", timezone="America/New_York", country="US",
                       now=world.clock.now())


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServer]:
    """The real app under uvicorn in its own thread and event loop, on the world's manual clock."""
    with LiveServer(world_for_app(database_url, then=_owner_and_other_site)) as server:
        yield server


def _shot(page: Any, name: str, db: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{db}.png"), full_page=True)


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
    page.goto(f"{live.url}/dashboard/")
    page.fill("input[name=email]", OWNER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    status = page.locator(f'#today [data-lead="{lead.id}"] [data-status]')
    expect(status).to_have_text("queued")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")

    live.call(world.clock.advance(0))  # the engine takes the lead: the first manager is rung
    expect(status).to_have_text("calling manager")
    expect(page.locator(f'#calling [data-lead="{lead.id}"]')).to_have_count(1)
    _shot(page, "live-calling", db)

    live.call(world.until_status(lead.id, "connected"))
    expect(status).to_have_text("connected")
    live.call(world.until_status(lead.id, "completed"))
    expect(status).to_have_text("completed")
    expect(page.locator(f'#calling [data-lead="{lead.id}"]')).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True
    live.call(world.clock.advance(10))  # prices arrive
    _shot(page, "live-mobile", db)

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live.url}/dashboard/leads")
    expect(page.locator(f'[data-lead="{lead.id}"]')).to_have_count(1)
    _shot(page, "leads", db)
    page.click(f'[data-lead="{lead.id}"] a')
    expect(page.locator("#legs")).to_contain_text("Pressed 1")
    _shot(page, "lead", db)
    page.goto(f"{live.url}/dashboard/costs?period=today")
    expect(page.locator('[data-figure="leads"]')).to_have_text("1")
    _shot(page, "costs", db)
    page.goto(f"{live.url}/dashboard/sites/{world.site.id}")
    _shot(page, "site-settings", db)
    page.goto(f"{live.url}/dashboard/sites/{world.site.id}/managers")
    _shot(page, "managers", db)
