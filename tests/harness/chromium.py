"""One Chromium for a run of browser tests, instead of one per test: launching it (Playwright's driver and
the browser) costs a second or two of a loaded machine per test. Each test still gets a clean slate: its
pages live in browser contexts of their own (cookies, storage, cache), closed after it, as
pytest-playwright does with its session-wide browser and per-test contexts
(https://playwright.dev/python/docs/browser-contexts).

Playwright's sync API marks this thread's event loop as running while it is started, so an async test
could not run meanwhile: the shared Chromium is stopped as soon as the next test is not a browser test
(`stop_unless_next_is_browser`, called by tests/conftest.py after each test's teardown)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("RINGBACK_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

_playwright: Any = None  # the started sync_playwright(), while a run of browser tests lasts
_browser: Any = None


def shared() -> Any:
    """The run's Chromium, launched on first use (or again, if it went away)."""
    global _playwright, _browser
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/ensure-chromium installs Debian's chromium)")
    if _browser is not None and not _browser.is_connected():
        stop()
    if _browser is None:
        from playwright.sync_api import sync_playwright

        _playwright = sync_playwright().start()
        _browser = _playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    return _browser


def close_contexts(browser: Any) -> None:
    """What a test left open (pages opened with `browser.new_page()` each have a context)."""
    if browser.is_connected():
        for context in list(browser.contexts):
            context.close()


def stop() -> None:
    global _playwright, _browser
    try:
        if _browser is not None and _browser.is_connected():
            _browser.close()
    finally:
        if _playwright is not None:
            _playwright.stop()
        _playwright = _browser = None


def stop_unless_next_is_browser(next_is_browser: bool) -> None:
    if _playwright is not None and not next_is_browser:
        stop()
