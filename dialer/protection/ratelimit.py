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
    return RateLimited(counter.rule.field, counter.rule.message, counter.retry_after(now))


class Limiter(Protocol):
    async def hit(self, session: AsyncSession, rules: Sequence[Rule], now: datetime) -> None:
        """Count one request against every rule, or raise RateLimited naming the first one over."""
        ...

    async def close(self) -> None: ...


class DatabaseLimiter:
    """Counters in the request's own transaction: a row lock per counter on PostgreSQL, so concurrent
    requests from many processes are counted exactly."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._hits = 0

    async def hit(self, session: AsyncSession, rules: Sequence[Rule], now: datetime) -> None:
        self._hits += 1
        if self._hits % CLEANUP_EVERY == 0:
            await session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < now))
        found = counters(self._secret, rules, now)
        if not found:
            return
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


REDIS_TIMEOUT = 2.0  # seconds a request waits for Redis before it is counted in the database


class RedisLimiter:
    def __init__(self, url: str, secret: str, *, prefix: str = "ringback:rl:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        self._script = self._redis.register_script(_SCRIPT)
        self._secret = secret
        self._prefix = prefix
        self._fallback = DatabaseLimiter(secret)
        self.away = False  # Redis failed the last request: counting in the database until it answers

    async def hit(self, session: AsyncSession, rules: Sequence[Rule], now: datetime) -> None:
        from redis.exceptions import RedisError

        found = counters(self._secret, rules, now)
        if not found:
            return
        try:
            over = await self._count(found, now)
        except (RedisError, OSError, TimeoutError) as exc:
            metrics.REDIS_FALLBACKS.labels("limiter").inc()
            if not self.away:
                self.away = True
                log.warning("Redis is unreachable (%s): counting rate limits in the database", type(exc).__name__)
            await self._fallback.hit(session, rules, now)
            return
        if self.away:
            self.away = False
            log.warning("Redis is back: counting rate limits in Redis again")
        if over:
            raise refusal(found[over - 1], now)

    async def _count(self, found: list[Counter], now: datetime) -> int:
        """Redis's answer: 0, or the 1-based index of the first counter over its limit."""
        args: list[int] = []
        for counter in found:
            ttl = counter.window_end - now + timedelta(seconds=5)  # a little past the window's end
            args += [counter.rule.limit, max(1, int(ttl.total_seconds() * 1000))]
        return int(await self._script(keys=[self._prefix + c.key for c in found], args=args))

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(secret: str, redis_url: str | None) -> Limiter:
    if redis_url:
        return RedisLimiter(redis_url, secret)
    return DatabaseLimiter(secret)
