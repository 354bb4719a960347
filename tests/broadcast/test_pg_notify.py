"""Live updates through PostgreSQL's LISTEN/NOTIFY, for installations without Redis: two broadcasts stand
for two processes; the listening connection is killed and the database is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from dialer.broadcast.memory import MemoryBroadcast, Message
from dialer.broadcast.pg_notify import MAX_PAYLOAD, PgNotifyBroadcast, asyncpg_dsn
from dialer.config import Settings
from dialer.runtime import make_broadcast
from tests.broadcast.servers import free_port

TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def two(url: str) -> AsyncIterator[tuple[PgNotifyBroadcast, PgNotifyBroadcast]]:
    a, b = PgNotifyBroadcast(url), PgNotifyBroadcast(url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def next_message(stream: AsyncIterator[Message]) -> Message:
    return await asyncio.wait_for(anext(stream), TIMEOUT)


async def test_a_message_published_in_one_process_reaches_the_subscribers_of_another(postgresql_url: str) -> None:
    async with two(postgresql_url) as (a, b), b.subscribe("lead:1") as there, a.subscribe("lead:1") as here, \
            b.subscribe("lead:2") as elsewhere:
        for version in range(1, 21):  # published one after another: received in that order
            await a.publish("lead:1", {"version": version})
        there_stream, here_stream = aiter(there), aiter(here)
        assert [(await next_message(there_stream))["version"] for _ in range(20)] == list(range(1, 21))
        # The publishing process hears itself, as with Redis (a web process that also runs the engine).
        assert (await next_message(here_stream))["version"] == 1
        await a.publish("lead:2", {"version": 7})
        assert (await next_message(aiter(elsewhere))) == {"version": 7}  # other channels are kept apart


async def test_messages_published_at_once_all_arrive(postgresql_url: str) -> None:
    async with two(postgresql_url) as (a, b), b.subscribe("site:1") as there:
        await asyncio.gather(*(a.publish("site:1", {"n": n}) for n in range(200)))
        stream = aiter(there)
        got = {(await next_message(stream))["n"] for _ in range(200)}
        assert got == set(range(200))


async def test_after_its_connection_is_killed_the_listener_comes_back_without_a_restart(postgresql_url: str) -> None:
    async with two(postgresql_url) as (a, b), b.subscribe("lead:1") as there:
        stream = aiter(there)
        await a.publish("lead:1", {"version": 1})
        assert (await next_message(stream))["version"] == 1
        killer = await asyncpg.connect(asyncpg_dsn(postgresql_url))
        try:
            for broadcast in (a, b):  # the publisher's connection and the listener's
                assert await killer.fetchval("SELECT pg_terminate_backend($1)", broadcast._conn.get_server_pid())
        finally:
            await killer.close()
        # What is published while it reconnects may be lost (the database is the truth); what is published
        # once it is back arrives. Publish until one gets through.
        async def publish_until_heard() -> Message:
            version = 1
            while True:
                version += 1
                await a.publish("lead:1", {"version": version})
                with contextlib.suppress(TimeoutError):  # (the queue itself: a cancelled anext ends a stream)
                    return await asyncio.wait_for(there.queue.get(), 0.5)

        heard = await asyncio.wait_for(publish_until_heard(), TIMEOUT)
        assert heard["version"] > 1


async def test_with_the_database_unreachable_subscribing_and_publishing_neither_hang_nor_raise() -> None:
    broadcast = PgNotifyBroadcast(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")
    try:
        async def go() -> None:
            async with broadcast.subscribe("lead:1"):
                await broadcast.publish("lead:1", {"version": 1})
                await broadcast.publish("lead:1", {"version": 2})

        await asyncio.wait_for(go(), TIMEOUT)
    finally:
        await broadcast.close()


async def test_a_message_too_long_for_notify_is_dropped_and_the_next_ones_still_arrive(postgresql_url: str) -> None:
    async with two(postgresql_url) as (a, b), b.subscribe("lead:1") as there:
        await a.publish("lead:1", {"text": "x" * MAX_PAYLOAD})
        await a.publish("lead:1", {"version": 2})
        assert await next_message(aiter(there)) == {"version": 2}


@pytest.mark.parametrize(("url", "kind"), [
    ("postgresql+asyncpg://postgres@127.0.0.1/ringback", PgNotifyBroadcast),
    ("sqlite+aiosqlite:///./ringback.db", MemoryBroadcast),
])
async def test_without_redis_postgresql_carries_the_updates(url: str, kind: type) -> None:
    broadcast = make_broadcast(Settings(database_url=url))
    try:
        assert isinstance(broadcast, kind)
    finally:
        await broadcast.close()
