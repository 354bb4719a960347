"""Price fetches kept in the database: an engine that dies leaves its jobs to another, a job runs once
however many engines look, and a call that ended just before a crash still gets its price."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from dialer import db
from dialer.clock import ManualClock
from dialer.core.events import LegEvent, PriceKnown
from dialer.db.models import CallLeg, Lead, ProviderJob
from dialer.engine.jobs import CLAIM_SECONDS, Jobs
from tests.harness.world import add_shop

DELAYS = (5.0, 10.0, 20.0)


class Twilio:
    """Fills a call's price in after `lag` asks, as Twilio does a while after the call."""

    def __init__(self, lag: int = 1) -> None:
        self.lag, self.asked = lag, 0

    async def fetch_call_price(self, sid: str) -> tuple[Decimal, str] | None:
        self.asked += 1
        return (Decimal("0.028"), "USD") if self.asked > self.lag else None


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[object]:
    engine = db.create_engine(database_url)
    yield engine
    await engine.dispose()


def engine_on(database: object, clock: ManualClock, twilio: Twilio, seen: list[LegEvent]) -> Jobs:
    async def report(event: LegEvent) -> None:
        seen.append(event)

    return Jobs(database, clock, twilio, report, DELAYS)  # type: ignore[arg-type]


async def test_a_job_left_by_an_engine_that_died_is_run_once_by_another(database: object) -> None:
    clock, twilio, seen = ManualClock(), Twilio(lag=1), []
    dead = engine_on(database, clock, twilio, seen)
    assert await dead.enqueue("call_price", "CA1", "leg1")
    assert not await dead.enqueue("call_price", "CA1", "leg1")  # a duplicated callback asks nothing more
    # It dies with the job claimed (mid-fetch): nobody else may take it before the claim lapses.
    await clock.advance(DELAYS[0])
    assert len(await dead._claim()) == 1  # noqa: SLF001
    others = [engine_on(database, clock, twilio, seen) for _ in range(2)]
    for other in others:
        await other.start()
    await clock.advance(1)
    assert twilio.asked == 0 and seen == []
    await clock.advance(CLAIM_SECONDS + DELAYS[1] + 1)
    assert seen == [PriceKnown("leg1", "CA1", price=Decimal("0.028"), unit="USD")]
    assert twilio.asked == 2  # not there yet once, then there: asked by one engine at a time
    await clock.advance(3600)
    assert len(seen) == 1
    for other in others:
        await other.stop()


async def test_a_call_that_ended_just_before_a_crash_still_gets_its_price(database: object) -> None:
    clock, twilio, seen = ManualClock(), Twilio(lag=0), []
    async with db.sessionmaker(database)() as session, session.begin():  # type: ignore[arg-type]
        site = await add_shop(session, now=clock.now())
        await session.flush()
        now = clock.now()
        await session.execute(insert(Lead).values(
            id="L1", site_id=site.id, kind="call", status="completed", version=0, token_hash="0" * 64,
            phone="+48501234567", timezone="Europe/Warsaw", attempt=1, created_at=now, updated_at=now,
            source={}, utm={}))
        for leg_id, answered in (("talked", now), ("unanswered", None)):
            await session.execute(insert(CallLeg).values(
                id=leg_id, lead_id="L1", step=f"a1:{leg_id}", role="manager", to_number="+12025550101",
                status="ended", provider_sid=f"CA-{leg_id}", created_at=now, answered_at=answered,
                ended_at=now + timedelta(seconds=60)))
    jobs = engine_on(database, clock, twilio, seen)
    await jobs.start()  # the restart: the ended call without a price and without a job gets one
    await clock.advance(DELAYS[0] + 1)
    assert seen == [PriceKnown("talked", "CA-talked", price=Decimal("0.028"), unit="USD")]
    await jobs.stop()
    async with db.sessionmaker(database)() as session:  # type: ignore[arg-type]
        (job,) = (await session.execute(select(ProviderJob))).scalars()
        assert (job.subject, job.done_at is not None, job.detail) == ("CA-talked", True, None)


async def test_a_price_that_never_comes_is_given_up_after_the_last_delay(database: object) -> None:
    clock, twilio, seen = ManualClock(), Twilio(lag=99), []
    jobs = engine_on(database, clock, twilio, seen)
    await jobs.start()
    await jobs.enqueue("call_price", "CA9", "leg9")
    await clock.advance(sum(DELAYS) + 10)
    assert twilio.asked == len(DELAYS) and seen == []
    async with db.sessionmaker(database)() as session:  # type: ignore[arg-type]
        (job,) = (await session.execute(select(ProviderJob))).scalars()
        assert job.detail == "no price in time" and job.done_at is not None
    await jobs.stop()
