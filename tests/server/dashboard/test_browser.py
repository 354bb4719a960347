"""In real Chromium: the live board changes a lead's status in place as the engine moves it, without a
reload; screenshots of the main pages go to test-output/dashboard/."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

from dialer.accounts.users import add_user
from dialer.sites.admin import add_site
from dialer.telephony.simulator import Behaviour
from server.app import create_app
from tests.conftest import World, make_world, script_hunt
from tests.server.dashboard.conftest import OWNER, PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[3] / "test-output" / "dashboard"
VISITOR = "+48501234567"
T = TypeVar("T")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


class LiveServer:
    """The real app under uvicorn in its own thread and event loop, on the world's manual clock."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)  # listening before uvicorn starts: early connections wait in the backlog
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.world: World
        self.server: uvicorn.Server

    def start(self) -> None:
        self.thread.start()
        self.world = self.call(self._build())
        config = uvicorn.Config(create_app(runtime=self.world.runtime), log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.serving = asyncio.run_coroutine_threadsafe(self.server.serve(sockets=[self.sock]), self.loop)

    async def _build(self) -> World:
        world = await make_world(self.database_url)
        async with world.runtime.sessions() as session, session.begin():
            await add_user(session, email=OWNER, password=PASSWORD, role="owner", now=world.clock.now())
            await add_site(session, name="Other shop", key="other", timezone="America/New_York", country="US",
                           now=world.clock.now())
        return world

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.server.should_exit = True
        self.serving.result(timeout=30)
        self.call(self.world.runtime.database.dispose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServer]:
    server = LiveServer(database_url)
    server.start()
    yield server
    server.stop()


def _shot(page: Any, name: str, db: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{db}.png"), full_page=True)


def test_the_live_board_follows_a_lead_without_reloading(live: LiveServer, request: pytest.FixtureRequest) -> None:
    from playwright.sync_api import expect, sync_playwright

    db = request.node.callspec.params["database_url"]
    world = live.world
    script_hunt(world.sim)
    world.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=70))
    lead = live.call(world.submit(VISITOR, utm={"source": "google", "medium": "cpc", "campaign": "winter"}))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
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
        finally:
            browser.close()


