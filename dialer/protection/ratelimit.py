"""Rate limits that hold across processes: fixed windows counted in Redis when `RINGBACK_REDIS_URL` is set,
else in the `rate_limits` table of the database every process shares.

A request is checked against several rules at once (per IP, visitor, number, site). Either all of them
count it or, when one is over its limit, none does: a refused request uses up nothing. In the database
this falls out of the transaction (the caller rolls back on `RateLimited`); in Redis a script checks all
counters before incrementing any.

Counter keys are keyed hashes (HMAC with the secret key), so no IP address or phone number is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.core.errors import RateLimited
from dialer.db.models import RateLimitCounter

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


class RedisLimiter:
    def __init__(self, url: str, secret: str, *, prefix: str = "ringback:rl:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._script = self._redis.register_script(_SCRIPT)
        self._secret = secret
        self._prefix = prefix

    async def hit(self, session: AsyncSession, rules: Sequence[Rule], now: datetime) -> None:
        found = counters(self._secret, rules, now)
        if not found:
            return
        args: list[int] = []
        for counter in found:
            ttl = counter.window_end - now + timedelta(seconds=5)  # a little past the window's end
            args += [counter.rule.limit, max(1, int(ttl.total_seconds() * 1000))]
        over = int(await self._script(keys=[self._prefix + c.key for c in found], args=args))
        if over:
            raise refusal(found[over - 1], now)

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(secret: str, redis_url: str | None) -> Limiter:
    if redis_url:
        return RedisLimiter(redis_url, secret)
    return DatabaseLimiter(secret)
