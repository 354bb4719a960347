"""The whole tree's fixtures and database choice come from the harness (tests/harness/, whose docstring
says which tests run on which database). The names tests import from here are the harness's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import (
    MANAGER_PHONES,
    PG_URL,
    World,
    chromium,
    empty,
    make_world,
    relaxed_abuse,
    script_hunt,
    truncate,
)
from tests.harness.databases import BROWSER, SQLITE_ONLY, is_browser_test, parametrise
from tests.harness.fixtures import browser, client_world, database_url, postgresql_url, sqlite_url, world

__all__ = [
    "MANAGER_PHONES", "PG_URL", "World", "browser", "client_world", "database_url", "make_world",
    "postgresql_url", "relaxed_abuse", "script_hunt", "sqlite_url", "truncate", "world",
]

_truncate = empty  # the name tests/scale used for it


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{SQLITE_ONLY}: runs on SQLite alone (see tests/harness/__init__.py)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrise(metafunc)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test driving Chromium through the harness's fixtures is a browser test even if its module forgot
    # to say so: `pytest -m browser` selects exactly the tests that start a browser.
    for item in items:
        if is_browser_test(item, getattr(item, "fixturenames", ())):
            item.add_marker(BROWSER)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # After the test's fixtures are torn down: the shared Chromium is stopped unless the next test is a
    # browser test too (tests/harness/chromium.py says why).
    try:
        return (yield)
    finally:
        chromium.stop_unless_next_is_browser(
            nextitem is not None and is_browser_test(nextitem, getattr(nextitem, "fixturenames", ())))
