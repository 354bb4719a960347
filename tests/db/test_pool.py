"""The PostgreSQL pool counts the connections that had to wait for a free one, how long, and the waits
that timed out (ringback_db_pool_*), so a pool too small for the load shows on the dashboard."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine

from dialer.db.pool import MeteredPool


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_waits_for_a_connection_and_timeouts_are_counted(postgresql_url: str) -> None:
    engine = create_async_engine(postgresql_url, poolclass=MeteredPool, pool_size=1, max_overflow=0, pool_timeout=0.5)
    try:
        async with engine.connect() as conn:  # a free connection: no wait
            await conn.execute(text("SELECT 1"))
        waits, timeouts, waited = (sample("ringback_db_pool_waits_total"), sample("ringback_db_pool_timeouts_total"),
                                   sample("ringback_db_pool_wait_seconds_count"))
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with pytest.raises(exc.TimeoutError):  # nobody gives it back within the pool's timeout
                async with engine.connect():
                    pass

            async def second() -> None:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))

            waiting = asyncio.create_task(second())
            async with asyncio.timeout(10):  # until it is waiting for `held` (counted as it starts to)
                while sample("ringback_db_pool_waits_total") < waits + 2:
                    await asyncio.sleep(0)
        await waiting  # served once `held` came back
        assert sample("ringback_db_pool_waits_total") == waits + 2
        assert sample("ringback_db_pool_timeouts_total") == timeouts + 1
        assert sample("ringback_db_pool_wait_seconds_count") == waited + 2
    finally:
        await engine.dispose()
