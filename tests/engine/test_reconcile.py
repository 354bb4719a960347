"""Reconciliation: a worker died during a bridged call, its end was never reported. The next engine asks
the provider about every leg with a call id that has not ended, at start-up, and settles it from the
answer: over → the end applied; still going on → left alone; unknown to the provider → ended, saying so.
Without it the managers on those calls stay busy until the call-length cut-off (4 hours)."""

from __future__ import annotations

from sqlalchemy import select

from dialer.core.states import LeadStatus, LegStatus
from dialer.db.models import CallLeg, LeadEvent, Manager
from dialer.engine import reconcile
from dialer.runtime import Runtime
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from tests.conftest import MANAGER_PHONES, World, make_world
from tests.harness import build_runtime

VISITOR = "+48501234567"
TALK = 3000.0  # seconds the visitor talks: far longer than the test runs


async def _connected(database_url: str) -> tuple[World, str]:
    world = await make_world(database_url, managers=1)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=3.0, talk_for=TALK))
    world.sim.script(VISITOR, Behaviour.answers(after=2.0, talk_for=TALK))
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.until_status(lead.id, LeadStatus.CONNECTED, limit=120)
    return world, lead.id


def _die(world: World) -> None:
    """The worker's process is gone: its engine claims nothing and hears nothing more (no clean stop)."""
    world.engine.pause()
    world.sim.attach(None)


async def _restart(world: World, provider: SimulatedProvider) -> Runtime:
    runtime = build_runtime(world.runtime.settings.database_url, clock=world.clock, provider=provider)
    await runtime.start()
    return runtime


async def _busy_managers(world: World) -> list[str | None]:
    async with world.runtime.sessions() as session:
        return [m for m in (await session.execute(select(Manager.busy_lead_id))).scalars() if m is not None]


async def test_calls_lost_with_their_worker_are_ended_at_the_restart_and_the_manager_freed(database_url: str) -> None:
    world, lead_id = await _connected(database_url)
    assert await _busy_managers(world) == [lead_id]
    _die(world)
    # The new process has a network of its own: the dead one's calls are unknown to it.
    restarted = await _restart(world, SimulatedProvider(world.clock, seed=8))
    try:
        restart = world.clock.now()
        lead = await world.until_status(lead_id, LeadStatus.COMPLETED, limit=60)
        print(f"lead ended {(world.clock.now() - restart).total_seconds():.0f} simulated s after the restart")
        assert await _busy_managers(world) == []
        async with world.runtime.sessions() as session:
            legs = list((await session.execute(select(CallLeg).where(CallLeg.lead_id == lead_id))).scalars())
            timeline = [e.detail for e in (await session.execute(
                select(LeadEvent).where(LeadEvent.lead_id == lead_id))).scalars()]
        assert {leg.status for leg in legs} == {LegStatus.ENDED}
        assert reconcile.UNKNOWN in {leg.end_detail for leg in legs}
        assert lead.status == LeadStatus.COMPLETED
        assert timeline
    finally:
        await restarted.close()
        await world.runtime.close()


async def test_an_end_the_provider_knows_is_applied_as_it_reports_it(database_url: str) -> None:
    world, lead_id = await _connected(database_url)
    _die(world)
    # The conversation ends while no engine listens, and the reports are lost (a webhook nobody got). It
    # lasted half a minute: the provider's answer (no word of a bridge) shows a conversation by its length.
    await world.clock.advance(30)
    for call in world.sim.active_calls():
        if call.request.role == "visitor":
            await world.sim.hangup(call.sid)
    world.sim._backlog.clear()
    await world.clock.advance(10)
    restarted = await _restart(world, world.sim)
    try:
        lead = await world.until_status(lead_id, LeadStatus.COMPLETED, limit=60)
        assert lead.status == LeadStatus.COMPLETED
        assert await _busy_managers(world) == []
        async with world.runtime.sessions() as session:
            legs = list((await session.execute(select(CallLeg).where(CallLeg.lead_id == lead_id))).scalars())
        assert all(leg.status == LegStatus.ENDED and leg.end_detail != reconcile.UNKNOWN for leg in legs)
        assert lead.outcome == "talked"
        # The conversation lasted as long as the provider says (the visitor's call is settled first: the
        # manager's end applied before it would hang the visitor up with a length of our own guessing).
        visitor = next(leg for leg in legs if leg.role == "visitor")
        (call,) = world.sim.calls_to(VISITOR)
        assert visitor.duration == call.ended_at_s and visitor.end_reason == "completed"
    finally:
        await restarted.close()
        await world.runtime.close()


async def test_a_call_still_going_on_is_left_alone(database_url: str) -> None:
    world, lead_id = await _connected(database_url)
    try:
        await world.clock.advance(reconcile.SETTLE_AFTER + 1)
        done = await world.engine.reconciler.run_once(older_than=0)
        assert done.asked == 2 and done.ended == done.unknown == 0
        await world.clock.advance(5)
        assert (await world.lead(lead_id)).status == LeadStatus.CONNECTED
        assert await _busy_managers(world) == [lead_id]
    finally:
        await world.runtime.close()


async def test_reconciliation_runs_on_a_timer_when_the_engine_polls(database_url: str) -> None:
    world = await make_world(database_url, managers=1, poll_interval=30.0)
    try:
        await world.engine.start()
        await world.clock.advance(reconcile.RECONCILE_EVERY * 3 + 1)
        assert len(world.engine.reconciler.rounds) == 4  # at start-up, then every interval
    finally:
        await world.runtime.close()
