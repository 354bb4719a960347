"""Pooled PostgreSQL connections: a connection the database dropped while it sat idle is replaced, not
handed to a request."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dialer.db import connect as db


async def test_a_connection_dropped_while_idle_is_replaced(postgresql_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE", 0.0)  # every checkout counts as after a quiet spell
    engine = db.create_engine(postgresql_url)
    other = db.create_engine(postgresql_url)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with other.begin() as conn:  # as a database restart would
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with engine.connect() as conn:
            fresh = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert fresh != pid
    finally:
        await engine.dispose()
        await other.dispose()

