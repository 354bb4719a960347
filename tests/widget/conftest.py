"""A real Ringback server (uvicorn, on the simulator, with a manual clock the test moves) and Debian's
Chromium driven by Playwright, for the widget's browser tests."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from dialer.broadcast.memory import MemoryBroadcast
from dialer.clock import ManualClock
from dialer.config import Settings
from dialer.db.models import Lead, Site
from dialer.runtime import Runtime
from dialer.telephony.simulator import SimulatedProvider
from server import demo
from server.app import create_app

CHROMIUM = os.environ.get("RINGBACK_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "widget"
TIMEOUT = 30.0


@dataclass
class LiveServer:
    """The server of `ringback demo` on a free port; its clock only moves when the test says so."""

    url: str
    port: int
    loop: asyncio.AbstractEventLoop
    runtime: Runtime
    clock: ManualClock
    sim: SimulatedProvider
    server: uvicorn.Server = field(repr=False)

    def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(TIMEOUT)

    def advance(self, seconds: float) -> None:
        self.call(self.clock.advance, seconds)

    def leads(self) -> list[Lead]:
        async def go() -> list[Lead]:
            async with self.runtime.sessions() as session:
                return list((await session.execute(select(Lead).order_by(Lead.created_at))).scalars())

        return self.call(go)  # type: ignore[no-any-return]

    def until_status(self, lead_id: str, status: str) -> None:
        """Move the server's clock until the lead reaches `status` (the browser is not asked)."""

        async def reached() -> bool:
            async with self.runtime.sessions() as session:
                lead = await session.get(Lead, lead_id)
                return lead is not None and lead.status == status

        self.call(self.clock.run_until, reached)

    def update_site(self, settings: dict[str, Any] | None = None, **columns: Any) -> None:
        async def go() -> None:
            async with self.runtime.sessions() as session, session.begin():
                site = (await session.execute(select(Site).where(Site.key == demo.DEMO_KEY))).scalar_one()
                for name, value in columns.items():
                    setattr(site, name, value)
                if settings is not None:
                    site.settings = {**(site.settings or {}), **settings}

        self.call(go)


def _serve(url: str, sock: socket.socket, box: dict[str, Any], ready: threading.Event) -> None:
    async def main() -> None:
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        sim = SimulatedProvider(clock, seed=7)
        runtime = Runtime.build(
            Settings(database_url=url, demo=True), clock=clock, provider=sim, broadcast=MemoryBroadcast(),
            poll_interval=None,
        )
        async with runtime.sessions() as session, session.begin():
            await demo.seed(session, clock.now())
        demo.script_simulator(sim)
        server = uvicorn.Server(uvicorn.Config(create_app(runtime=runtime), lifespan="on", log_level="warning"))
        box.update(loop=asyncio.get_running_loop(), runtime=runtime, clock=clock, sim=sim, server=server)
        ready.set()
        try:
            await server.serve(sockets=[sock])
        finally:
            await runtime.close()

    try:
        asyncio.run(main())
    finally:
        ready.set()


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until uvicorn has started: no polling for readiness
    port = sock.getsockname()[1]
    box: dict[str, Any] = {}
    ready = threading.Event()
    thread = threading.Thread(target=_serve, args=(database_url, sock, box, ready), daemon=True)
    thread.start()
    assert ready.wait(TIMEOUT) and "server" in box, "the server did not start"
    yield LiveServer(f"http://127.0.0.1:{port}", port, box["loop"], box["runtime"], box["clock"], box["sim"],
                     box["server"])
    box["server"].should_exit = True
    thread.join(TIMEOUT)
    sock.close()


@pytest.fixture
def browser(live: LiveServer) -> Iterator[Any]:
    # Per test, and only after the database fixtures: the sync API marks its event loop as running in
    # this thread, and those fixtures call asyncio.run().
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/ensure-chromium installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@dataclass
class Visitor:
    """One browser context (a visitor's browser profile) and the problems its pages reported."""

    context: Any
    errors: list[str] = field(default_factory=list)  # exceptions that escaped into a page
    console: list[str] = field(default_factory=list)  # what pages logged as errors (a 422 is logged too)

    def page(self) -> Any:
        page = self.context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.console.append(msg.text) if msg.type == "error" else None)
        return page


@pytest.fixture
def visitor(browser: Any, live: LiveServer) -> Iterator[Callable[..., Visitor]]:
    """Opens browser profiles; after the test, no exception may have escaped into any of their pages."""
    opened: list[Visitor] = []

    def open_profile(**options: Any) -> Visitor:
        settings = {"viewport": {"width": 1280, "height": 800}, "locale": "en-US", "timezone_id": "Europe/Warsaw",
                    **options}
        profile = Visitor(browser.new_context(**settings))
        profile.context.set_default_timeout(10_000)
        opened.append(profile)
        return profile

    yield open_profile
    problems = [e for v in opened for e in v.errors]
    for profile in opened:
        profile.context.close()
    assert not problems, problems


def shadow(page: Any, selector: str) -> Any:
    """An element inside the widget's shadow root."""
    return page.locator("ringback-widget").locator(selector)


def drive_until(live: LiveServer, page: Any, status: str, *, limit: int = 600) -> None:
    """Move the server's clock a second at a time until the widget shows `status`."""
    shown = shadow(page, "[role=status]")
    for _ in range(limit):
        if shown.get_attribute("data-status") == status:
            return
        live.advance(1)
    raise AssertionError(f"the widget never showed {status!r}; it shows {shown.text_content()!r}")


def freeze_clock(page: Any) -> None:
    """Fake the page's clock and stop it: its timers fire only when the test runs the clock."""
    start = datetime.now(UTC)
    page.clock.install(time=start)
    page.clock.pause_at(start + timedelta(seconds=5))
