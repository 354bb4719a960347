"""The databases a test runs on: one SQLite file and the PostgreSQL at RINGBACK_TEST_POSTGRES_URL, each
migrated once per session with Alembic and emptied before every test that asks for `database_url`.

Which tests run on which database is decided here (see `parametrise`), not in each fixture."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dialer import db
from dialer.db.models import Base

T = TypeVar("T")

PG_URL = os.environ.get("RINGBACK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
# The Redis the tests that need one use (each under a key prefix of its own), the same for every test.
REDIS_URL = os.environ.get("RINGBACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
DATABASES = ("sqlite", "postgresql")
SQLITE_ONLY = "sqlite_only"
BROWSER = "browser"
BROWSER_FIXTURES = ("browser", "visitor")  # a test using one of these drives Chromium


def apart(work: Callable[[], T]) -> T:
    """Run `work` in a thread of its own and wait for it: the database set-up may then call asyncio.run()
    from any fixture, even while Playwright's sync API has this thread's event loop marked running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def run_apart(work: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await work()

    return apart(lambda: asyncio.run(main()))


async def truncate(url: str) -> None:
    """Empty every table of the database at `url` (the schema stays), its ids starting from 1 again.

    On PostgreSQL the rows a test leaves are deleted and the sequences reset, rather than TRUNCATEd as
    `db.empty_tables` does: TRUNCATE gives each of the twenty tables new files, 30 to 130 ms on a quiet
    machine and several times that on a loaded one, before every one of the suite's PostgreSQL tests;
    deleting a test's few rows takes a few milliseconds."""
    engine = db.create_engine(url)
    try:
        if db.is_sqlite(url):
            await db.empty_tables(engine)
            return
        async with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):  # children before their parents
                await conn.execute(text(f"DELETE FROM {table.name}"))
            await conn.execute(text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
            ))
    finally:
        await engine.dispose()


def empty(url: str) -> None:
    """`truncate`, from synchronous code."""
    run_apart(lambda: truncate(url))


def _reset_postgres() -> None:
    async def go() -> None:
        engine = create_async_engine(PG_URL)
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {TABLES}, alembic_version CASCADE"))
        await engine.dispose()

    run_apart(go)


def is_browser_test(definition: pytest.Function | pytest.Item, fixturenames: list[str] | tuple[str, ...]) -> bool:
    return definition.get_closest_marker(BROWSER) is not None or any(f in fixturenames for f in BROWSER_FIXTURES)


def databases_for(definition: pytest.Function | pytest.Item, fixturenames: list[str] | tuple[str, ...]) -> list[str]:
    """SQLite alone for a test marked `sqlite_only` and for every browser test; otherwise both."""
    if definition.get_closest_marker(SQLITE_ONLY) is not None or is_browser_test(definition, fixturenames):
        return ["sqlite"]
    return list(DATABASES)


def parametrise(metafunc: pytest.Metafunc) -> None:
    """`pytest_generate_tests`: a test whose fixtures include `database_url` runs once per database it is
    for, with the database's name as its id (`test_x[sqlite]`, `test_x[postgresql]`)."""
    if "database_url" in metafunc.fixturenames:
        names = databases_for(metafunc.definition, metafunc.fixturenames)
        metafunc.parametrize("database_url", names, indirect=True, ids=names)


# fixtures (registered by tests/conftest.py) ---------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's SQLite database, migrated; not emptied between tests (`database_url` is)."""
    path: Path = tmp_path_factory.mktemp("db") / "ringback.db"
    url = f"sqlite+aiosqlite:///{path}"
    apart(lambda: db.migrate(url))
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    """The session's PostgreSQL database, dropped and migrated afresh; not emptied between tests."""
    _reset_postgres()
    apart(lambda: db.migrate(PG_URL))
    return PG_URL


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty migrated database: SQLite or PostgreSQL, as `parametrise` decided for this test."""
    assert hasattr(request, "param"), "database_url is parametrised by tests/conftest.py's pytest_generate_tests"
    url: str = request.getfixturevalue(f"{request.param}_url")
    empty(url)
    yield url
