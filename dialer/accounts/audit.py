"""The audit log: every settings change and sign-in attempt, with who, when and what changed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.db.models import AuditLog

LOGIN_FAILED = "login_failed"


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    user_id: int | None = None,
    site_id: int | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    session.add(
        AuditLog(at=at, actor=actor[:254], user_id=user_id, action=action, site_id=site_id,
                 target=target[:254], detail=detail or {}, ip=ip)
    )


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields whose value differs."""
    return {k: [before.get(k), after[k]] for k in after if before.get(k) != after[k]}


async def recent_failures(session: AsyncSession, target: str, now: datetime, window: timedelta) -> int:
    query = (
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.action == LOGIN_FAILED, AuditLog.target == target, AuditLog.at > now - window)
    )
    return int((await session.execute(query)).scalar_one())


async def entries(session: AsyncSession, site_ids: frozenset[int] | None, limit: int = 200) -> list[AuditLog]:
    query = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)
    if site_ids is not None:
        query = query.where(AuditLog.site_id.in_(site_ids or {-1}))
    return list((await session.execute(query)).scalars())
