"""Database connections and migrations, the same code for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from dialer.db.pool import MeteredPool

MIGRATIONS = Path(__file__).parent / "migrations"
# A pooled connection that sat unused this long is pinged before it is handed out. Pinging on every
# checkout (SQLAlchemy's pool_pre_ping) costs a round trip per request; a busy process reuses its
# connections within milliseconds, and a database restart is still noticed on the next quiet checkout
# (a connection in use when it happens fails once, and its error invalidates the whole pool).
PING_AFTER_IDLE = 2.0


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across crashes, fast commits
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # 20 kept open: with fewer, a burst of concurrent requests opened and closed connections (and
    # prepared its statements again) on every request past the tenth; 30 at most, as before.
    engine = create_async_engine(url, pool_size=20, max_overflow=10, poolclass=MeteredPool)
    event.listen(engine.sync_engine, "checkin", _checked_in)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


def _checked_in(dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()  # `info` is emptied when a connection is invalidated


def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < PING_AFTER_IDLE:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:  # the pool throws this connection away and hands out a fresh one
        raise exc.DisconnectionError(str(error)) from error


async def empty_tables(engine: AsyncEngine) -> None:
    """Delete every row of Ringback's tables (tests and benchmarks; never on a database in use)."""
    from dialer.db.models import (
        Base,  # the models import nothing from here; imported late to keep db.py light
    )

    tables = list(reversed(Base.metadata.sorted_tables))
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table.name}"))
        else:
            names = ", ".join(t.name for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (blocking; call it before the event loop starts)."""
    command.upgrade(alembic_config(url), revision)
