"""Rate limits that hold across processes: fixed windows counted in Redis when `RINGBACK_REDIS_URL` is set,
else in the `rate_limits` table of the database every process shares.

A request is checked against several rules at once (per IP, visitor, number, site). Either all of them
count it or, when one is over its limit, none does: a refused request uses up nothing. In the database
this falls out of the transaction (the caller rolls back on `RateLimited`); in Redis a script checks all
counters before incrementing any.

Redis is an optimisation, never a dependency: when it cannot be reached (refused, timed out), a request is
counted in the database instead, and Redis is used again by the first request after it is back. An
outage is logged once when it starts and once when it ends, not per request.

Counter keys are keyed hashes (HMAC with the secret key), so no IP address or phone number is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from dialer import metrics
from dialer.core.errors import RateLimited
from dialer.db.models import RateLimitCounter

log = logging.getLogger("ringback.ratelimit")

CLEANUP_EVERY = 200  # hits between deletions of expired counters (per process)


@dataclass(frozen=True)
class Rule:
    scope: str  # "ip", "visitor", "phone", "site"
    subject: str  # the IP address, visitor id, number or site id
    limit: int
    window: int  # seconds
    field: str | None = None  # the request field the visitor can change, when there is one
    message: str = "Too many requests. Please try again later."
    code: str = "rate_limited"


@dataclass(frozen=True)
class Counter:
    rule: Rule
    key: str
    window_end: datetime

    def retry_after(self, now: datetime) -> int:
        return max(1, math.ceil((self.window_end - now).total_seconds()))


def counters(secret: str, rules: Sequence[Rule], now: datetime) -> list[Counter]:
    """Each rule's counter for the window `now` falls in."""
    found = []
    for rule in rules:
        index = int(now.timestamp()) // rule.window
        name = f"{rule.scope}|{rule.subject}|{rule.window}|{index}".encode()
        key = hmac.new(secret.encode(), name, hashlib.sha256).hexdigest()
        end = datetime.fromtimestamp((index + 1) * rule.window, tz=now.tzinfo)
        found.append(Counter(rule, key, end))
    return found


def refusal(counter: Counter, now: datetime) -> RateLimited:
    return RateLimited(counter.rule.field, counter.rule.message, counter.retry_after(now), counter.rule.code)


@dataclass(frozen=True)
class Counted:
    """What one `hit` counted outside the caller's transaction (Redis keys), to give back if the request
    is not written after all. Empty when the database counted it: its rollback gives the counts back."""

    keys: tuple[str, ...] = ()


NOTHING = Counted()


class Limiter(Protocol):
    async def hit(self, session: AsyncSession, rules: Sequence[Rule], now: datetime) -> Counted:
        """Count one request against every rule, or raise RateLimited naming the first one over."""
        ...

    async def give_back(self, counted: Counted) -> None:
        """Take back what `hit` counted, for a request that was not written in the end (its commit failed)."""
        ...

    async def close(self) -> None: ...


class DatabaseLimiter:
    """Counters in the request's own transaction: a row lock per counter on PostgreSQL, so concurrent
    requests from many processes are counted exactly."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._hits = 0

    async def hit(self, session: AsyncSession, rules: Sequence[Rule], now: datetime) -> Counted:
        self._hits += 1
        if self._hits % CLEANUP_EVERY == 0:
            await session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < now))
        found = counters(self._secret, rules, now)
        if not found:
            return NOTHING
        dialect = session.get_bind().dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Every counter in one statement (one round trip), rows in key order so that concurrent requests
        # lock shared counters in the same order and cannot deadlock.
        rows = [dict(key=c.key, count=1, expires_at=c.window_end) for c in sorted(found, key=lambda c: c.key)]
        query = insert(RateLimitCounter).values(rows)
        query = query.on_conflict_do_update(
            index_elements=[RateLimitCounter.key], set_={"count": query.excluded.count + RateLimitCounter.count}
        ).returning(RateLimitCounter.key, RateLimitCounter.count)
        counts = {key: count for key, count in await session.execute(query)}
        for counter in found:
            if counts[counter.key] > counter.rule.limit:
                raise refusal(counter, now)  # the caller's rollback takes back this request's counts
        return NOTHING

    async def give_back(self, counted: Counted) -> None:
        return None  # counted in the caller's transaction: its rollback took the counts back

    async def close(self) -> None:
        return None


# KEYS: the counters; ARGV: limit and time-to-live (ms) of each. Returns 0, or the 1-based index of the
# first counter at its limit (then nothing was counted).
_SCRIPT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[2 * i - 1]) then return i end
end
for i, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('PEXPIRE', key, ARGV[2 * i])
end
return 0
"""


# KEYS: counters one request incremented; each goes down by one (never below nothing).
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


REDIS_TIMEOUT = 2.0  # seconds a request waits for Redis before it is counted in the database


class RedisLimiter:
    def __init__(self, url: str, secret: str, *, prefix: str = "ringback:rl:") -> None:
        """`prefix` starts every key (`RINGBACK_REDIS_PREFIX` + "rl:", see `make_limiter`)."""
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        self._script = self._redis.register_script(_SCRIPT)
        self._give_back = self._redis.register_script(_GIVE_BACK)
        self._secret = secret
        self._prefix = prefix
        self._fallback = DatabaseLimiter(secret)
        self.away = False  # Redis failed the last request: counting in the database until it answers

    async def hit(self, session: AsyncSession, rules: Sequence[Rule], now: datetime) -> Counted:
        from redis.exceptions import RedisError

        found = counters(self._secret, rules, now)
        if not found:
            return NOTHING
        try:
            over = await self._count(found, now)
        except (RedisError, OSError, TimeoutError) as exc:
            metrics.REDIS_FALLBACKS.labels("limiter").inc()
            if not self.away:
                self.away = True
                log.warning("Redis is unreachable (%s): counting rate limits in the database", type(exc).__name__)
            return await self._fallback.hit(session, rules, now)
        if self.away:
            self.away = False
            log.warning("Redis is back: counting rate limits in Redis again")
        if over:
            raise refusal(found[over - 1], now)
        return Counted(tuple(self._prefix + c.key for c in found))

    async def give_back(self, counted: Counted) -> None:
        from redis.exceptions import RedisError

        if not counted.keys:
            return
        try:
            await self._give_back(keys=list(counted.keys))
        except (RedisError, OSError, TimeoutError) as exc:  # the counts expire with their window
            log.warning("could not give back rate limit counts (%s)", type(exc).__name__)

    async def _count(self, found: list[Counter], now: datetime) -> int:
        """Redis's answer: 0, or the 1-based index of the first counter over its limit."""
        args: list[int] = []
        for counter in found:
            ttl = counter.window_end - now + timedelta(seconds=5)  # a little past the window's end
            args += [counter.rule.limit, max(1, int(ttl.total_seconds() * 1000))]
        return int(await self._script(keys=[self._prefix + c.key for c in found], args=args))

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(secret: str, redis_url: str | None, redis_prefix: str = "ringback:") -> Limiter:
    """Redis when configured (its keys under `redis_prefix`, as every other Ringback key), else the database."""
    if redis_url:
        return RedisLimiter(redis_url, secret, prefix=redis_prefix + "rl:")
    return DatabaseLimiter(secret)
