"""The test harness: one way to build a world — a migrated database, a manual clock, the simulated
telephone network, a runtime with its engine, the shop and its managers — and to drive it.

    world = await make_world(database_url, managers=2, start=..., site_settings={}, policy=...)
    world = await make_world(database_url, seed=demo.seed)   # another site than the shop
    runtime = build_runtime(database_url, clock=..., provider=..., broadcast=..., **settings)
    with app_client(database_url, start=..., run_engine=False, wrap=...) as (client, world): ...
    with LiveServer(world_for_app(database_url, ...)) as live: ...   # uvicorn on a free port, for Chromium

Modules: `world` (World, make_world, add_shop, build_runtime, MANAGER_PHONES, script_hunt,
relaxed_abuse), `apps` (app_client, client_for, world_for_app, count), `serving` (ThreadedServer, LiveServer),
`databases` (which database a test runs on), `fixtures` (database_url, sqlite_url, postgresql_url,
world, client_world, browser — registered for the whole tree by tests/conftest.py).

Which databases a test runs on
------------------------------
`database_url` is an emptied, migrated database. A test that uses it (directly or through a fixture
such as `world`, `client_world`, `dash`) runs on both SQLite and the PostgreSQL at
RINGBACK_TEST_POSTGRES_URL, as `test_x[sqlite]` and `test_x[postgresql]`: persistence, the engine, rate
limits and caps, intake writes and anything about locking or concurrency behave differently per
database, so they are tried on both.

A test marked `@pytest.mark.sqlite_only` (or a module with `pytestmark = pytest.mark.sqlite_only`) runs
on SQLite alone, as `test_x[sqlite]`: mark a test so when the database cannot change what it checks — a
page's rendering, a request refused before anything is written, the browser's side of things. Browser
tests (marked `browser`, or using the `browser`/`visitor` fixtures, which marks them `browser`) are
always SQLite only: the server side they exercise is tested on both databases without a browser.
`pytest -m browser` selects exactly them; `-m "not browser"` leaves Chromium out.

`sqlite_url` and `postgresql_url` are the session's databases as they are (migrated, not emptied), for
a test that wants one of them on purpose. `REDIS_URL` is the Redis of the tests that need one
(RINGBACK_TEST_REDIS_URL, else `redis://127.0.0.1:6379/0`), each test under a key prefix of its own.
"""

from __future__ import annotations

from tests.harness.apps import app_client, client_for, count, world_for_app
from tests.harness.databases import PG_URL, REDIS_URL, empty, truncate
from tests.harness.serving import LiveServer, ThreadedServer, listening_socket, url_of
from tests.harness.world import (
    MANAGER_PHONES,
    Seed,
    World,
    add_shop,
    build_runtime,
    make_world,
    relaxed_abuse,
    script_hunt,
)

__all__ = [
    "MANAGER_PHONES", "PG_URL", "REDIS_URL", "LiveServer", "Seed", "ThreadedServer", "World", "add_shop", "app_client",
    "build_runtime", "client_for", "count", "empty", "listening_socket", "make_world", "relaxed_abuse", "script_hunt",
    "truncate", "url_of", "world_for_app",
]
