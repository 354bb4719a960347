"""A hunt can be followed in the log: one line per step with the lead, the leg's step, the manager rung
and what happened — and no phone number, whole or in part beyond its last two digits."""

from __future__ import annotations

import logging

import pytest

from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World, script_hunt

VISITOR = "+48501234567"


async def test_each_hunt_step_is_logged_without_numbers(world: World, caplog: pytest.LogCaptureFixture) -> None:
    script_hunt(world.sim)
    world.sim.script(VISITOR, Behaviour.answers(after=3, talk_for=30))
    caplog.set_level(logging.INFO)
    lead = await world.submit(VISITOR)
    await world.until_status(lead.id, "completed")
    hunt = [r.getMessage() for r in caplog.records if r.name == "ringback.hunt"]
    mine = [line for line in hunt if line.startswith(f"lead {lead.id}")]
    dialed = [line for line in mine if line.endswith(": dialing")]
    assert len(dialed) == 4  # three managers, then the visitor
    assert all(" step a1:m" in line and " manager " in line for line in dialed[:3])
    assert any("ended (no answer)" in line for line in mine)
    assert any("pressed 1" in line for line in mine)
    assert f"lead {lead.id} step a1:m1 manager {dialed[0].split(' manager ')[1].split(':')[0]}: manager M1: ended (no answer)" in mine
    assert f"lead {lead.id}: now completed: call ended" in mine
    everything = " ".join(r.getMessage() for r in caplog.records)
    for number in (VISITOR, *MANAGER_PHONES):
        assert number[3:] not in everything and number[-7:] not in everything



@pytest.mark.sqlite_only
def test_a_providers_words_lose_their_numbers(caplog: pytest.LogCaptureFixture) -> None:
    from datetime import UTC, datetime

    from dialer.core.step import Step
    from dialer.engine.hunt_log import log_hunt

    step = Step(datetime(2026, 12, 1, tzinfo=UTC))
    step.timeline("L1", "status", "Twilio refused +1 (415) 555-0143: unverified", status="failed")
    caplog.set_level(logging.INFO)
    log_hunt(step, {})
    assert [r.getMessage() for r in caplog.records] == ["lead L1: now failed: Twilio refused …43: unverified"]
