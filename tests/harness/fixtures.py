"""The harness's fixtures, registered for the whole tree by tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.harness import chromium
from tests.harness.apps import client_for
from tests.harness.databases import database_url, postgresql_url, sqlite_url
from tests.harness.world import World, make_world

__all__ = ["browser", "client_world", "database_url", "postgresql_url", "sqlite_url", "world"]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    """The shop with three managers, its engine started, in the test's own event loop."""
    w = await make_world(database_url)
    await w.engine.start()
    yield w
    await w.runtime.close()


@pytest.fixture
def client_world(database_url: str) -> Iterator[tuple[TestClient, World]]:
    """A TestClient over the shop's app, its engine running."""
    yield from client_for(database_url)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright's sync API, shared by a run of browser tests (see
    tests/harness/chromium.py); what the test opened in it is closed after it. A test using it is a
    browser test: it is marked `browser` and runs on SQLite only."""
    shared = chromium.shared()
    yield shared
    chromium.close_contexts(shared)
