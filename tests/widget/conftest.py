"""The widget's browser tests: the server of `ringback demo` served for real on a free port (the
harness's LiveServer, with a manual clock the test moves) and visitors' browser profiles in Debian's
Chromium (the harness's `browser` fixture)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server import demo
from tests.harness import LiveServer, world_for_app

__all__ = ["ACCEPTED", "OUTPUT", "LiveServer", "Visitor", "drive_until", "freeze_clock", "shadow"]

# What the widget says of a request just accepted while managers are free (nobody is waited for).
ACCEPTED = "Request received. We are calling a manager…"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "widget"


@pytest.fixture
def live(database_url: str) -> Iterator[LiveServer]:
    """The demo site (three managers, scripted as `ringback demo` scripts them), its clock at today's now."""
    world = world_for_app(database_url, start=datetime.now(UTC).replace(microsecond=0), seed=demo.seed)
    demo.script_simulator(world.sim)
    with LiveServer(world) as server:
        yield server


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
