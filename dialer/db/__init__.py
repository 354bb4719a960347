"""Persistence: the tables, connection set-up and migrations."""

from __future__ import annotations

from dialer.db.connect import (
    MIGRATIONS,
    alembic_config,
    create_engine,
    empty_tables,
    is_sqlite,
    migrate,
    sessionmaker,
)

__all__ = ["MIGRATIONS", "alembic_config", "create_engine", "empty_tables", "is_sqlite", "migrate", "sessionmaker"]
