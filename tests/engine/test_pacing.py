"""The call pacer's shared token bucket: engines in several processes take distinct slots `1 / cps` apart
from one account's bucket, in Redis or in the database, and go on when Redis is away."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest

from dialer import db
from dialer.clock import ManualClock
from dialer.engine.pacing import DatabaseBucket, Pacer, RedisBucket
from tests.broadcast.servers import closed_url
from tests.harness import REDIS_URL


@pytest.mark.parametrize("where", ["database", "redis", "redis-away"])
async def test_engines_sharing_an_account_never_take_the_same_slot(database_url: str, where: str) -> None:
    clock = ManualClock()
    database = db.create_engine(database_url)
    prefix = f"test-{secrets.token_hex(4)}:"  # a fresh bucket in the shared Redis
    url = {"redis": REDIS_URL, "redis-away": closed_url()}.get(where)

    def pacer() -> Pacer:  # one per "process": its own connection to the shared bucket
        bucket = RedisBucket(url, database, prefix=prefix) if url else DatabaseBucket(database)
        return Pacer(bucket, clock, calls_per_second=2)

    pacers = [pacer() for _ in range(4)]
    try:
        # 4 engines, 5 reservations each of 1 to 3 calls, all at once on one account
        asks = [p.reserve("AC1", 1 + i % 3) for i in range(5) for p in pacers]
        slots = sorted(at for batch in await asyncio.gather(*asks) for at in batch)
        gaps = {(later - earlier).total_seconds() for earlier, later in zip(slots, slots[1:], strict=False)}
        assert slots[0] == clock.now() and gaps == {0.5}  # 2 calls per second: one slot every half second
        assert len(slots) == 4 * (1 + 2 + 3 + 1 + 2)
        # another account is not held up by this one's backlog
        assert await pacers[0].reserve("AC2", 1) == [clock.now()]
        # once the backlog is over, the next call goes at once
        await clock.advance((slots[-1] - clock.now()).total_seconds() + 10)
        assert await pacers[1].reserve("AC1", 1) == [clock.now()]
        assert await pacers[1].reserve("AC1", 1) == [clock.now() + timedelta(seconds=0.5)]
    finally:
        for p in pacers:
            await p.close()
        await database.dispose()
