"""The call pacer: calls created through a provider's REST API start no faster than its account allows.

Twilio places REST-created calls at the account's calls per second (1 by default) and queues the rest,
answering the create with an estimated `queue_time`; calls placed by `<Dial>` from inside a call are not
paced (https://www.twilio.com/docs/voice/api/call-resource, "Calls Per Second"). So Ringback paces its
own creates: every process takes its slots from one token bucket per provider account (one token deep:
slots `1 / cps` apart), in Redis when `RINGBACK_REDIS_URL` is set, else in the `call_pace` table of the
database all processes share. A create waits for its slot before it is sent; meanwhile its leg's claim
and its `starts_at` say when it will be placed, so neither another engine's recovery nor the manager's
ring deadline (`machine._not_started_in_time`) mistakes a paced call for a lost one.

Only managers' legs are created through the REST API: the visitor is dialed with `<Dial>` from the
manager's call, so the visitor's leg never waits here.

Redis is an optimisation, never a dependency: when it cannot be reached, slots come from the database (an
outage is logged when it starts and when it ends). Times are the engine clock's, passed in.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.clock import Clock
from dialer.db.models import CallPace, table_of

log = logging.getLogger("ringback.pacing")

REDIS_TIMEOUT = 2.0  # seconds a reservation waits for Redis before the database is asked instead
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
pace_table = table_of(CallPace)


class Bucket(Protocol):
    async def reserve(self, key: str, now: datetime, count: int, interval: float) -> datetime:
        """Take `count` consecutive slots `interval` seconds apart; returns the first one's time."""
        ...

    async def close(self) -> None: ...


class DatabaseBucket:
    """The next free slot per account in a row of `call_pace`, moved with a conditional update (on the
    value read), so of two processes reserving at once one wins and the other reads again."""

    def __init__(self, database: AsyncEngine) -> None:
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")

    async def reserve(self, key: str, now: datetime, count: int, interval: float) -> datetime:
        async with self.autocommit.connect() as conn:
            for _ in range(50):
                row = (await conn.execute(select(pace_table.c.next_at).where(pace_table.c.key == key))).first()
                start = now if row is None else max(now, row.next_at)
                after = start + timedelta(seconds=count * interval)
                if row is None:
                    try:
                        await conn.execute(insert(pace_table).values(key=key, next_at=after))
                    except IntegrityError:
                        continue  # another process made the row first: read it
                    return start
                moved = await conn.execute(
                    update(pace_table).where(pace_table.c.key == key, pace_table.c.next_at == row.next_at)
                    .values(next_at=after)
                )
                if moved.rowcount == 1:
                    return start
        raise RuntimeError("the call pacer's row kept changing under us")  # 50 lost races: never seen

    async def close(self) -> None:
        return None


# KEYS[1]: the account's next free slot (seconds since the epoch, as text); ARGV: now, count, interval.
# Returns the first slot taken, as text (a Lua number would be cut to an integer).
_RESERVE = """
local start = math.max(tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = start + tonumber(ARGV[2]) * tonumber(ARGV[3])
redis.call('SET', KEYS[1], string.format('%.6f', after),
           'PX', math.ceil((after - tonumber(ARGV[1])) * 1000) + 60000)
return string.format('%.6f', start)
"""


class RedisBucket:
    def __init__(self, url: str, database: AsyncEngine, *, prefix: str = "ringback:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        self._script = self._redis.register_script(_RESERVE)
        self._prefix = prefix + "pace:"
        self._fallback = DatabaseBucket(database)
        self.away = False

    async def reserve(self, key: str, now: datetime, count: int, interval: float) -> datetime:
        from redis.exceptions import RedisError

        try:
            args: list[str | int | float] = [f"{(now - _EPOCH).total_seconds():.6f}", count, interval]
            first = float(await self._script(keys=[self._prefix + key], args=args))
        except (RedisError, OSError, TimeoutError) as exc:
            if not self.away:
                self.away = True
                log.warning("Redis is unreachable (%s): pacing calls through the database", type(exc).__name__)
            return await self._fallback.reserve(key, now, count, interval)
        if self.away:
            self.away = False
            log.warning("Redis is back: pacing calls through Redis again")
        return _EPOCH + timedelta(seconds=first)

    async def close(self) -> None:
        await self._redis.aclose()


class Pacer:
    """Slots for REST creates, `1 / calls_per_second` apart per account, whichever process asks."""

    def __init__(self, bucket: Bucket, clock: Clock, calls_per_second: float) -> None:
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be greater than 0")
        self.bucket = bucket
        self.clock = clock
        self.interval = 1.0 / calls_per_second

    async def reserve(self, key: str, count: int) -> list[datetime]:
        """`count` slots for the account `key`, in order: when each create may be sent."""
        if count <= 0:
            return []
        first = await self.bucket.reserve(key, self.clock.now(), count, self.interval)
        return [first + timedelta(seconds=i * self.interval) for i in range(count)]

    async def wait_until(self, at: datetime) -> None:
        """Sleep on the engine's clock until `at` (at once when it has passed)."""
        delay = (at - self.clock.now()).total_seconds()
        if delay <= 0:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        timer = self.clock.call_later(delay, wake)
        try:
            await ready
        finally:
            timer.cancel()

    async def close(self) -> None:
        await self.bucket.close()


def make_pacer(database: AsyncEngine, clock: Clock, calls_per_second: float, redis_url: str | None,
               redis_prefix: str = "ringback:") -> Pacer:
    bucket: Bucket = RedisBucket(redis_url, database, prefix=redis_prefix) if redis_url else DatabaseBucket(database)
    return Pacer(bucket, clock, calls_per_second)
