"""Server-side dashboard sessions: the browser's cookie holds a random token, this table what it grants.

Only the SHA-256 of a token is stored, so reading the table (a backup, a log of queries) signs nobody in.
A session ends when its row is deleted (signing out, "sign out everywhere", the user being removed: the
row goes with the user), when it expires, when the user is deactivated, or when the user's password
changes by any path (the row remembers a mark of the password hash it was opened with).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import DashboardSession, User

LIFETIME = timedelta(days=7)
SEEN_EVERY = timedelta(minutes=5)  # how stale `seen_at` may get before a request writes it
TOKEN_BYTES = 32
MAX_TOKEN = 128  # longer cookie values are not ours: not even hashed


def token_key(token: str) -> str | None:
    """The row id of a cookie's token; None for a value that cannot be one of ours."""
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return None
    return hashlib.sha256(token.encode()).hexdigest()


def password_mark(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Opened:
    token: str  # for the cookie, never stored
    row: DashboardSession


async def open_session(session: AsyncSession, user: User, now: datetime, *, ip: str | None = None,
                       user_agent: str = "") -> Opened:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    key = token_key(token)
    assert key is not None
    row = DashboardSession(id=key, user_id=user.id, csrf=secrets.token_urlsafe(24), password_mark=password_mark(user),
                           created_at=now, seen_at=now, expires_at=now + LIFETIME, ip=ip,
                           user_agent=user_agent[:200])
    session.add(row)
    await session.flush()
    return Opened(token, row)


async def find(session: AsyncSession, token: str, now: datetime) -> tuple[DashboardSession, User] | None:
    """The live session of a cookie's token and its user, or None. Refreshes `seen_at` now and then (the
    caller commits)."""
    key = token_key(token)
    if key is None:
        return None
    row = await session.get(DashboardSession, key)
    if row is None:
        return None
    user = await session.get(User, row.user_id)
    if row.expires_at <= now or user is None or not user.active or row.password_mark != password_mark(user):
        await session.delete(row)
        return None
    if now - row.seen_at >= SEEN_EVERY:
        row.seen_at = now
    return row, user


async def end(session: AsyncSession, token: str) -> None:
    key = token_key(token)
    if key is not None:
        await session.execute(delete(DashboardSession).where(DashboardSession.id == key))


async def end_all(session: AsyncSession, user_id: int, *, keep: str | None = None) -> int:
    """End every session of a user, except the one of the token `keep`; returns how many ended."""
    query = delete(DashboardSession).where(DashboardSession.user_id == user_id)
    keep_key = token_key(keep) if keep else None
    if keep_key is not None:
        query = query.where(DashboardSession.id != keep_key)
    result = await session.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def of_user(session: AsyncSession, user_id: int, now: datetime) -> list[DashboardSession]:
    query = (select(DashboardSession).where(DashboardSession.user_id == user_id, DashboardSession.expires_at > now)
             .order_by(DashboardSession.seen_at.desc()))
    return list((await session.execute(query)).scalars())


async def purge_expired(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))


async def set_password(session: AsyncSession, user: User, password_hash: str, *, keep: str | None = None) -> int:
    """A new password for `user`: every other session ends; the one of `keep` (the browser that changed
    it) goes on with the new password's mark. Returns how many sessions ended."""
    user.password_hash = password_hash
    ended = await end_all(session, user.id, keep=keep)
    keep_key = token_key(keep) if keep else None
    if keep_key is not None:
        row = await session.get(DashboardSession, keep_key)
        if row is not None:
            row.password_mark = password_mark(user)
    return ended
