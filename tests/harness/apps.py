"""A world's app driven in-process by Starlette's TestClient. The world is built in a throwaway event
loop and its connections dropped, so the app's own loop (the client's portal) opens its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import anyio.from_thread
from sqlalchemy import func, select
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from server.app import create_app
from tests.harness.world import World, make_world


def world_for_app(
    database_url: str, *, then: Callable[[World], Awaitable[Any]] | None = None, **options: Any
) -> World:
    """`make_world(database_url, **options)`, then `then(world)` (more to seed), from synchronous code;
    the world's database connections are dropped, for an app in another event loop to use it."""

    async def build() -> World:
        world = await make_world(database_url, **options)
        if then is not None:
            await then(world)
        await world.runtime.database.dispose()
        return world

    with anyio.from_thread.start_blocking_portal() as portal:
        return portal.call(build)


@contextmanager
def app_client(
    database_url: str,
    *,
    run_engine: bool = True,
    base_url: str = "http://testserver",
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
    then: Callable[[World], Awaitable[Any]] | None = None,
    peer: tuple[str, int] = ("testclient", 50000),
    **options: Any,
) -> Iterator[tuple[TestClient, World]]:
    """A TestClient over a world's app, and the world. `options` and `then` go to `world_for_app`;
    `run_engine=False` leaves the engine off; `wrap` wraps the app (in middleware a test needs); `peer` is
    the address the app sees requests come from (TestClient's own is no address at all). The runtime is
    closed in the app's loop at the end."""
    world = world_for_app(database_url, then=then, **options)
    app: ASGIApp = create_app(runtime=world.runtime, run_engine=run_engine)
    with TestClient(wrap(app) if wrap else app, base_url=base_url, client=peer) as client:
        try:
            yield client, world
        finally:
            client.portal.call(world.runtime.close)  # type: ignore[union-attr]


def client_for(database_url: str, start: datetime | None = None, **options: Any) -> Iterator[tuple[TestClient, World]]:
    """`app_client` for a fixture to `yield from`; the world's clock starts at `start`."""
    with app_client(database_url, start=start, **options) as pair:
        yield pair


def count(client: TestClient, world: World, model: type) -> int:
    """How many rows of `model` the world's database holds."""

    async def go() -> int:
        async with world.runtime.sessions() as session:
            return (await session.execute(select(func.count()).select_from(model))).scalar_one()

    return client.portal.call(go)  # type: ignore[union-attr]
