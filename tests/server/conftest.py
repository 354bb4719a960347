"""Fixtures for driving the app: a TestClient over a world whose clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import anyio.from_thread
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from server.app import create_app
from tests.conftest import World, make_world


def client_for(database_url: str, start: datetime | None = None) -> Iterator[tuple[TestClient, World]]:
    async def build() -> World:
        return await make_world(database_url, start=start)

    # Built in a throwaway loop; its connections are dropped so the app's loop opens its own.
    with anyio.from_thread.start_blocking_portal() as portal:
        world = portal.call(build)
        portal.call(world.runtime.database.dispose)
    with TestClient(create_app(runtime=world.runtime)) as client:
        yield client, world
        client.portal.call(world.runtime.database.dispose)  # type: ignore[union-attr]


@pytest.fixture
def client_world(database_url: str) -> Iterator[tuple[TestClient, World]]:
    yield from client_for(database_url)


def count(client: TestClient, world: World, model: type) -> int:
    async def go() -> int:
        async with world.runtime.sessions() as session:
            return (await session.execute(select(func.count()).select_from(model))).scalar_one()

    return client.portal.call(go)  # type: ignore[union-attr]
