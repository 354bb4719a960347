"""The limit on sign-in attempts, checked before any password is.

An attempt first takes a place in two fixed-window counters of the `rate_limits` table (one atomic
INSERT … ON CONFLICT DO UPDATE … RETURNING, committed before the password is hashed): one per e-mail and
address, one per address. Only an attempt that got its place is checked against the password, so 40
parallel guesses for one account check at most `PER_ACCOUNT_AND_ADDRESS` passwords, whichever process
they reach. A sign-in that succeeds gives its place back: only failures use up the limit.

There is deliberately no limit per e-mail alone: one address could then lock a known e-mail out for the
whole window. Guessing from many addresses is slowed by the per-address limit, the password pool's
bound and argon2's cost; every failure is in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import RateLimitCounter
from dialer.protection.ratelimit import DatabaseLimiter, Rule, counters

WINDOW = 15 * 60  # seconds
PER_ACCOUNT_AND_ADDRESS = 5
PER_ADDRESS = 20
MESSAGE = "Too many failed sign-ins. Wait 15 minutes, then try again."


def rules(email: str, ip: str) -> list[Rule]:
    return [
        Rule("signin-account-ip", f"{email}|{ip}", PER_ACCOUNT_AND_ADDRESS, WINDOW, message=MESSAGE),
        Rule("signin-ip", ip, PER_ADDRESS, WINDOW, message=MESSAGE),
    ]


async def take(session: AsyncSession, secret: str, found: Sequence[Rule], now: datetime) -> None:
    """Count one attempt, or raise RateLimited (counting nothing: the caller rolls back)."""
    await DatabaseLimiter(secret).hit(session, found, now)


async def give_back(session: AsyncSession, secret: str, found: Sequence[Rule], now: datetime) -> None:
    """The attempt succeeded: its places are free again (same `now` as `take`, so the same windows)."""
    keys = [c.key for c in counters(secret, found, now)]
    await session.execute(update(RateLimitCounter).where(RateLimitCounter.key.in_(keys), RateLimitCounter.count > 0)
                          .values(count=RateLimitCounter.count - 1))
