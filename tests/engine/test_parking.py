"""A lead whose step keeps failing (not for want of the database: a bug, a record the rules cannot read)
is parked after a few tries: it ends `failed` with the reason on its timeline, its manager is freed, the
owner gets a notice, and it is never tried again in a tight loop. The other leads go on as usual."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from dialer.core import views
from dialer.core.states import LeadStatus
from dialer.db.models import LeadEvent, Manager, SiteNotice
from dialer.engine import parking
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, make_world

BAD = "+48501234500"  # the visitor whose lead the rules choke on
GOOD = "+48501234567"


async def test_a_lead_whose_step_keeps_failing_is_parked_and_shown_to_the_owner(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(database_url, managers=1, poll_interval=30.0)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2.0, talk_for=20.0))
    real = views.lead_view
    tries = 0

    def choking(lead: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal tries
        if lead.phone == BAD:
            tries += 1
            raise KeyError("a setting the rules cannot read")
        return real(lead, *args, **kwargs)

    monkeypatch.setattr(views, "lead_view", choking)
    try:
        await world.engine.start()
        bad = await world.submit(BAD)
        good = await world.submit(GOOD)
        parked = await world.until_status(bad.id, LeadStatus.FAILED, limit=120)
        assert parked.wake_at is None and parked.outcome is not None and "KeyError" in parked.outcome
        assert BAD not in parked.outcome
        at_parking = tries  # a try in a batch of several is made again alone: up to twice per step
        assert parking.LIMIT <= at_parking <= 2 * parking.LIMIT
        done = await world.until_status(good.id, LeadStatus.COMPLETED, limit=600)
        assert done.status == LeadStatus.COMPLETED
        # Ten simulated minutes later it has not been tried again.
        await world.clock.advance(600)
        assert tries == at_parking
        async with world.runtime.sessions() as session:
            timeline = [e.detail for e in (await session.execute(
                select(LeadEvent).where(LeadEvent.lead_id == bad.id))).scalars()]
            notices = list((await session.execute(select(SiteNotice))).scalars())
            busy = [m for m in (await session.execute(select(Manager.busy_lead_id))).scalars() if m]
        assert parked.outcome in timeline
        [notice] = notices
        assert notice.kind == parking.NOTICE and bad.id in notice.detail and notice.seen_at is None
        assert busy == []
    finally:
        await world.runtime.close()
