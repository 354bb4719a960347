"""The database away for a while: the engine keeps trying (backing off, logging each error once a second
at most) and, once it is back, steps what fell due meanwhile, without a restart."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from dialer.core.machine import Trigger
from dialer.engine import store
from dialer.engine.inbox import Work
from dialer.intake.accept import CallbackRequest, accept
from dialer.retrying import Backoff, QuietLog
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World, make_world

VISITOR = "+48501234567"


class Outage:
    """While `down`, the store's reads the engine's tick makes fail as they would with PostgreSQL away."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...] = ("due_lead_ids", "next_wake")) -> None:
        self.down = False
        self.failures = 0
        for name in names:
            monkeypatch.setattr(store, name, self._failing(getattr(store, name)))

    def _failing(self, real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def read(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                self.failures += 1
                raise OperationalError("SELECT …", {}, ConnectionRefusedError(111, "Connect call failed"))
            return await real(*args, **kwargs)

        return read


async def submit_unannounced(world: World) -> str:
    """A lead written by a web process whose nudge never reached this engine: only its wake-up time
    (now) tells the engine about it."""
    async with world.runtime.sessions() as session, session.begin():
        req = CallbackRequest(site=world.site.key, phone=VISITOR, timezone="Europe/Warsaw")
        lead, _ = await accept(session, req, world.clock.now())
    return lead.id


async def test_a_lead_due_during_an_outage_is_stepped_once_the_database_is_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world = await make_world(database_url, managers=1, poll_interval=5.0)
    world.sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    outage = Outage(monkeypatch)
    await world.engine.start()
    await world.clock.advance(6)  # a poll or two, all well

    outage.down = True
    caplog.set_level(logging.WARNING, logger="ringback.engine")
    await world.clock.advance(40)  # polls fail, again and again
    assert outage.failures >= 3
    lead_id = await submit_unannounced(world)  # written elsewhere while the engine's reads failed
    await world.clock.advance(20)
    assert world.sim.dialed == []

    outage.down = False
    await world.clock.advance(40)  # within the longest wait (30 s) the engine looks again, and finds it
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0]]
    assert (await world.lead(lead_id)).status in ("calling_manager", "missed")  # rung (nobody answers)

    # All this happened within a second of real time: the error was logged once, the repeats counted.
    failed = [r for r in caplog.records if r.getMessage().startswith("engine tick failed")]
    assert len(failed) == 1
    assert any(r.getMessage() == f"engine tick works again after {outage.failures} failure(s)"
               for r in caplog.records)
    await world.runtime.close()


async def test_the_engine_backs_off_and_a_nudge_does_not_hurry_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(database_url, managers=1, poll_interval=1.0)
    outage = Outage(monkeypatch)
    await world.engine.start()
    await world.clock.advance(0)  # the first tick, all well: the next poll in 1 s
    outage.down = True
    await world.clock.advance(1)
    assert outage.failures == 1
    for _ in range(3):
        world.engine.nudge()  # e.g. every visitor's request while the database is away
        await world.clock.advance(0.5)
    # 1 s (±25 %) of waiting: neither the nudges nor the 1 s poll brought the tries closer.
    assert outage.failures == 2
    await world.clock.advance(120)
    assert outage.failures <= 2 + 9  # ~2, 4, 8, 16, then every ~30 s at most: not 120 tries
    outage.down = False
    await world.clock.advance(31)
    before = outage.failures
    await world.clock.advance(10)  # back to polling every second, which never fails now
    assert outage.failures == before
    assert world.engine._backoff.failures == 0
    await world.runtime.close()


async def test_the_hands_wait_while_the_database_is_away_then_take_up_what_waited(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(database_url, managers=1)  # the engine not started: no ticks, only the hands
    lead_id = await submit_unannounced(world)
    outage = Outage(monkeypatch, names=("lock_leads",))
    outage.down = True
    with pytest.raises(OperationalError):
        await world.engine.submit(lead_id, Work(Trigger.CANCEL))
    tried = outage.failures
    waiting = world.engine.submit(lead_id, Work(Trigger.CANCEL))  # e.g. a visitor's cancel, a provider's report
    for _ in range(50):
        await asyncio.sleep(0)
    assert outage.failures == tried and not waiting.done()  # not tried at once against a database that is away

    outage.down = False
    await world.clock.advance(1.25)  # the first wait is 1 s ±25 %
    cancelled = await waiting
    assert cancelled is not None and cancelled.status == "cancelled"
    assert world.engine._hand_backoff.failures == 0
    await world.runtime.close()


def test_backoff_doubles_to_its_cap_with_jitter_then_resets() -> None:
    backoff = Backoff(first=1.0, cap=30.0, jitter=0.25, rand=random.Random(3))
    delays = [backoff.failed() for _ in range(8)]
    for delay, base in zip(delays, [1, 2, 4, 8, 16, 30, 30, 30], strict=True):
        assert base * 0.75 <= delay <= min(30.0, base * 1.25)
    assert len(set(delays)) == len(delays)  # jittered: engines that failed together do not retry together
    assert backoff.succeeded() == 8
    assert 0.75 <= backoff.failed() <= 1.25


def test_quiet_log_says_the_same_error_once_a_second_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    quiet = QuietLog(logging.getLogger("test.quiet"))
    caplog.set_level(logging.ERROR, logger="test.quiet")
    down = OSError("connection refused")
    assert quiet.error("tick", down, now=100.0)
    for i in range(5):
        assert not quiet.error("tick", OSError("connection refused"), now=100.1 + i * 0.1)
    assert quiet.error("tick", ValueError("other"), now=100.2)  # another error is news
    assert quiet.error("hand", down, now=100.2)  # so is the same error elsewhere
    assert quiet.error("tick", down, now=101.0)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["tick failed", "tick failed", "hand failed", "tick failed (5 more like it not logged)"]
    assert caplog.records[0].exc_info is not None
