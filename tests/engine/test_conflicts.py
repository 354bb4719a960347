"""Deadlocks and serialization failures: the transaction is tried again, with the work it carried kept.

The engine's own transactions take their locks in one order (leads, managers, legs; see
`dialer/engine/store.py`), so among themselves they never deadlock (tests/scale/test_burst.py logs none
under a burst). A transaction from elsewhere that takes them the other way round still can: PostgreSQL
then aborts one of the two, and if it is the engine's step, the step is tried again.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select, text

from dialer.db.models import HeldEvent, Lead, Manager
from dialer.engine import conflicts
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, make_world
from tests.harness.databases import empty

VISITOR = "+48501234567"


class FakeOrig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


class Wrapped(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"database error {sqlstate}")
        self.orig = FakeOrig(sqlstate)


async def test_a_deadlock_or_serialization_failure_is_tried_again_and_other_errors_are_not() -> None:
    for sqlstate in ("40P01", "40001"):
        tries: list[int] = []

        async def once_in_conflict(sqlstate: str = sqlstate, tries: list[int] = tries) -> str:
            tries.append(1)
            if len(tries) == 1:
                raise Wrapped(sqlstate)
            return "done"

        assert await conflicts.retried("a test", once_in_conflict) == "done" and len(tries) == 2

    async def always_in_conflict() -> str:
        raise Wrapped("40P01")

    with pytest.raises(Wrapped):
        await conflicts.retried("a test", always_in_conflict, tries=3)

    calls: list[int] = []

    async def broken() -> str:
        calls.append(1)
        raise Wrapped("23505")  # a unique violation: trying again changes nothing

    with pytest.raises(Wrapped):
        await conflicts.retried("a test", broken)
    assert calls == [1]


async def test_a_step_aborted_by_a_real_deadlock_is_tried_again_and_its_report_applied(
    postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(empty, postgresql_url)
    world = await make_world(postgresql_url, managers=1)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=20))
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.clock.advance(0)  # the manager is rung
    caplog.set_level(logging.INFO, logger="ringback.engine")

    # Another program takes the manager's row, then (below) the lead's: the wrong way round.
    other = world.runtime.database
    async with other.connect() as conn:
        await conn.execute(select(Manager.id).where(Manager.phone == MANAGER_PHONES[0]).with_for_update())
        hearing = asyncio.create_task(world.clock.advance(3))  # answered at 2 s: its step waits for the manager
        # (In autocommit: within one transaction, pg_stat_activity is read once and never changes.)
        async with other.execution_options(isolation_level="AUTOCOMMIT").connect() as watch:
            while not (await watch.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ))).scalar_one():
                await asyncio.sleep(0.02)  # until the engine's step is seen waiting for our lock
        # The engine's step waited first, so its deadlock check fires first: it is the one aborted.
        await conn.execute(select(Lead.id).where(Lead.id == lead.id).with_for_update())
        await conn.commit()
    await hearing

    done = await world.until_status(lead.id, "completed")
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], VISITOR]
    assert done.outcome == "talked"
    assert any(r.getMessage().startswith("a step met a deadlock: trying again") for r in caplog.records), [
        r.getMessage() for r in caplog.records]
    async with world.runtime.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(HeldEvent))).scalar_one() == 0
    await world.runtime.close()
