"""Redis is an optimisation, never a dependency: while it is away publishing drops the message quietly,
subscribing still returns (a subscription that hears nothing until Redis is back), and the visitor's live
stream opens, sends its snapshot and reads the database after a quiet spell."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.db.models import Lead
from server import live
from tests.broadcast.servers import OwnRedis, closed_url
from tests.conftest import World


async def test_publishing_with_redis_away_never_raises_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    broadcast = RedisBroadcast(closed_url())
    caplog.set_level(logging.WARNING, logger="ringback.redis")
    try:
        for version in range(5):
            await broadcast.publish("lead:1", {"version": version})
    finally:
        await broadcast.close()
    assert len([r for r in caplog.records if r.name == "ringback.redis"]) == 1


async def test_subscribing_with_redis_away_returns_a_subscription_that_hears_nothing() -> None:
    broadcast = RedisBroadcast(closed_url())
    try:
        async with asyncio.timeout(5):  # at once, not after Redis comes back
            async with broadcast.subscribe("lead:1") as sub:
                await broadcast.publish("lead:1", {"version": 1})
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(anext(aiter(sub)), 0.3)
    finally:
        await broadcast.close()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    yield server
    server.stop()


async def test_a_subscription_made_while_redis_was_away_hears_it_once_it_is_back(own_redis: OwnRedis) -> None:
    prefix = f"test-{secrets.token_hex(6)}:"
    listener, talker = RedisBroadcast(own_redis.url, prefix=prefix), RedisBroadcast(own_redis.url, prefix=prefix)
    try:
        async with listener.subscribe("lead:1") as sub:
            own_redis.start()
            got = None
            async with asyncio.timeout(10):
                while got is None:  # published until the listener has subscribed again
                    await talker.publish("lead:1", {"version": 2})
                    with contextlib.suppress(TimeoutError):
                        got = await asyncio.wait_for(anext(aiter(sub)), 0.5)
            assert got == {"version": 2}
    finally:
        await listener.close()
        await talker.close()


def test_the_live_stream_opens_and_reports_with_redis_away(
    client_world: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, world = client_world
    monkeypatch.setattr(live, "RECHECK_SECONDS", 0.2)
    world.runtime.broadcast = RedisBroadcast(closed_url())  # what the live endpoint subscribes with
    world.engine.pause()
    created = client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234567"})
    assert created.status_code == 201, created.text
    lead = created.json()

    async def end() -> None:
        async with world.runtime.sessions() as session, session.begin():
            await session.execute(
                update(Lead).where(Lead.id == lead["id"])
                .values(status="cancelled", version=Lead.version + 5, wake_at=None)
            )

    with client.websocket_connect(f"/api/v1/callbacks/{lead['id']}/live?token={lead['token']}") as ws:
        assert ws.receive_json()["status"] == "queued"
        client.portal.call(end)  # type: ignore[union-attr]
        assert ws.receive_json()["status"] == "cancelled"  # from the database recheck
        with pytest.raises(WebSocketDisconnect):
            ws.receive_json()
