"""`RINGBACK_SIMULATOR_SPEED` makes the simulated people quicker, and nothing else: the server's clock,
which stamps leads, timelines and the audit log, stays the real one."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.config import Settings
from dialer.runtime import Runtime
from dialer.telephony.simulator import SimulatedProvider

pytestmark = pytest.mark.sqlite_only


async def test_a_faster_simulator_leaves_the_servers_clock_real(tmp_path: Path) -> None:
    runtime = Runtime.build(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", simulator_speed=100.0,
                                     demo=True))
    try:
        assert isinstance(runtime.provider, SimulatedProvider)
        rang = asyncio.Event()

        async def ring() -> None:
            rang.set()

        started = time.monotonic()
        runtime.provider.clock.call_later(60, ring)  # a simulated minute…
        await asyncio.wait_for(rang.wait(), 10)
        assert time.monotonic() - started < 5  # …is over in well under a real one
        for clock in (runtime.clock, runtime.provider.clock):
            assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 1  # and nobody's time ran ahead
    finally:
        await runtime.close()
        await runtime.database.dispose()
