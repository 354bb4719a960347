"""What the benchmarks run on: a migrated, emptied database with many one-manager sites and many leads,
written in bulk (the intake's validation is measured by bench/intake.py, not here)."""

from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer import db
from dialer.core.abuse_rules import UNGUARDED
from dialer.core.states import TERMINAL, LeadStatus
from dialer.db.models import Lead, Manager, Site
from dialer.intake.accept import hash_token

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/h_scale"


def database_url() -> str:
    """PostgreSQL by default (`RINGBACK_BENCH_DATABASE_URL` picks another; never a database in use)."""
    return os.environ.get("RINGBACK_BENCH_DATABASE_URL", DEFAULT_PG)


def prepare(url: str) -> None:
    """Migrate (blocking; before the event loop starts)."""
    db.migrate(url)


async def empty(engine: AsyncEngine, url: str) -> None:
    await db.empty_tables(engine)


# A load generator's sites: every abuse guard off, and visitors callable at any hour, so the figures
# measure the engine whatever the time of day the benchmark runs.
BENCH_SETTINGS = {"abuse": UNGUARDED, "calling_window": ["00:00", "24:00"]}


async def populate(
    engine: AsyncEngine, *, sites: int, leads: int, now: datetime, spread: float = 0.0,
    first_due: datetime | None = None,
) -> None:
    """`sites` sites with one manager each; `leads` leads over them, created `now`, due from `first_due`
    (default `now`) over `spread` seconds."""
    async with engine.begin() as conn:
        await conn.execute(
            insert(Site),
            [dict(key=f"bench{i}", name=f"Bench {i}", timezone="UTC", country="US", any_country=True,
                  origins=[], settings=BENCH_SETTINGS, created_at=now) for i in range(sites)],
        )
        ids = list((await conn.execute(select(Site.id).order_by(Site.id))).scalars())
        await conn.execute(
            insert(Manager),
            [dict(site_id=site_id, name=f"M{i}", phone=f"+1202{5000000 + i:07d}", position=1, active=True)
             for i, site_id in enumerate(ids)],
        )
        token = hash_token(secrets.token_urlsafe(8))
        rows = []
        for i in range(leads):
            due = (first_due or now) + timedelta(seconds=spread * i / max(1, leads))
            rows.append(dict(
                id=secrets.token_hex(16), site_id=ids[i % sites], kind="call", status=LeadStatus.QUEUED,
                version=1, token_hash=token, phone=f"+4850{1000000 + i:07d}", timezone="UTC", wake_at=due,
                attempt=1, utm={}, source={}, created_at=now, updated_at=now,
            ))
        for start in range(0, len(rows), 2000):
            await conn.execute(insert(Lead), rows[start:start + 2000])


async def open_leads(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(Lead).where(Lead.status.not_in([s.value for s in TERMINAL]))
        return int((await conn.execute(query)).scalar_one())


async def outcomes(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(Lead.status, func.count()).group_by(Lead.status))
        return {status: count for status, count in rows}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
