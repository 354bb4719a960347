"""On the simulator: a recorded call whose recording report is lost still gets its recording, looked up by
a job the step that ended the visitor's leg wrote; the job outlives the engine, a late report changes
nothing, a leg left without a job is swept up at start, and a recording that never turns up is given up
with a line on the lead's timeline."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import delete, select, update

from dialer.clock import ManualClock
from dialer.core.events import RecordingReady
from dialer.core.states import LeadStatus, LegRole
from dialer.db.models import CallLeg, LeadEvent, ProviderJob, Site
from dialer.engine.jobs import NOT_FOUND, RECORDING_DELAYS
from dialer.runtime import Runtime
from dialer.telephony.sim_scripts import Hostility
from dialer.telephony.simulator import Behaviour, SimulatedProvider
from tests.conftest import MANAGER_PHONES, World, make_world
from tests.harness import build_runtime

VISITOR = "+48501234567"
READY = "recording of the visitor leg is ready"


class Counting(SimulatedProvider):
    """Counts the times it is asked for a call's recordings."""

    asked = 0

    async def recordings(self, sid: str) -> list[str]:
        self.asked += 1
        return await super().recordings(sid)


class Forgetful(SimulatedProvider):
    """A network that keeps no recording at all (it failed on the provider's side)."""

    async def recordings(self, sid: str) -> list[str]:
        return []


async def recorded_world(database_url: str, network: Callable[[ManualClock], SimulatedProvider] | None = None,
                         *, lose_reports: bool = True) -> World:
    """The shop with one manager, recording its calls, on the simulator (or `network`), which with
    `lose_reports` loses every recording's report."""
    world = await make_world(database_url, managers=1)
    if network is not None:
        await world.runtime.close()
        sim = network(world.clock)
        world = World(build_runtime(database_url, clock=world.clock, provider=sim), world.clock, sim, world.site)
    async with world.runtime.sessions() as session, session.begin():
        await session.execute(update(Site).where(Site.id == world.site.id).values(recording=True))
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=20))
    world.sim.lose_recording_reports = lose_reports
    return world


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    world = await recorded_world(database_url)
    await world.runtime.start()
    yield world
    await world.runtime.close()


async def talked(world: World) -> str:
    lead = await world.submit(VISITOR)
    await world.until_status(lead.id, LeadStatus.COMPLETED, limit=300)
    return lead.id


async def legs(world: World, lead_id: str) -> dict[str, CallLeg]:
    async with world.runtime.sessions() as session:
        found = (await session.execute(select(CallLeg).where(CallLeg.lead_id == lead_id))).scalars()
        return {leg.role: leg for leg in found}


async def timeline(world: World, lead_id: str) -> list[str]:
    async with world.runtime.sessions() as session:
        query = select(LeadEvent.detail).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id)
        return list((await session.execute(query)).scalars())


async def recording_jobs(world: World) -> list[ProviderJob]:
    async with world.runtime.sessions() as session:
        return list((await session.execute(select(ProviderJob).where(ProviderJob.kind == "recording"))).scalars())


async def test_a_lost_recording_report_is_made_up_for_by_asking_the_network(world: World) -> None:
    lead_id = await talked(world)
    await world.clock.advance(RECORDING_DELAYS[0] + 1)
    found = await legs(world, lead_id)
    visitor, manager = found[LegRole.VISITOR], found[LegRole.MANAGER]
    assert visitor.recording_url == f"sim://recordings/{visitor.provider_sid}.wav"
    (job,) = await recording_jobs(world)
    assert job.subject == manager.provider_sid and job.done_at is not None and job.detail is None
    assert (await timeline(world, lead_id)).count(READY) == 1
    # The report comes after all, twice, and another address with it: nothing changes.
    for url in (visitor.recording_url, "sim://recordings/other.wav"):
        await world.engine.on_provider_event(RecordingReady(visitor.id, visitor.provider_sid, url=url))
    assert (await legs(world, lead_id))[LegRole.VISITOR].recording_url == visitor.recording_url
    assert (await timeline(world, lead_id)).count(READY) == 1


async def test_a_recording_reported_in_time_makes_its_job_ask_nothing(database_url: str) -> None:
    world = await recorded_world(database_url, lambda clock: Counting(clock, seed=7), lose_reports=False)
    await world.runtime.start()
    try:
        lead_id = await talked(world)
        await world.clock.advance(sum(RECORDING_DELAYS))
        assert (await legs(world, lead_id))[LegRole.VISITOR].recording_url
        (job,) = await recording_jobs(world)
        assert job.detail == "reported" and job.attempts == 1
        assert isinstance(world.sim, Counting) and world.sim.asked == 0
        assert (await timeline(world, lead_id)).count(READY) == 1
    finally:
        await world.runtime.close()


async def test_the_job_outlives_the_engine_that_wrote_it(database_url: str) -> None:
    world = await recorded_world(database_url)
    await world.runtime.start()
    lead_id = await talked(world)
    await world.runtime.close()  # stopped before the recording is looked up; the network lives on
    world = World(build_runtime(database_url, clock=world.clock, provider=world.sim), world.clock, world.sim,
                  world.site)
    (job,) = await recording_jobs(world)
    assert job.done_at is None
    restarted = world.runtime
    await restarted.start()
    try:
        await world.clock.advance(RECORDING_DELAYS[0] + 1)
        visitor = (await legs(world, lead_id))[LegRole.VISITOR]
        assert visitor.recording_url == f"sim://recordings/{visitor.provider_sid}.wav"
        assert (await timeline(world, lead_id)).count(READY) == 1
    finally:
        await restarted.close()


async def test_a_recorded_leg_without_a_job_is_swept_up_at_start(database_url: str) -> None:
    world = await recorded_world(database_url)
    await world.runtime.start()
    lead_id = await talked(world)
    await world.runtime.close()
    restarted: Runtime = build_runtime(database_url, clock=world.clock, provider=world.sim)
    world = World(restarted, world.clock, world.sim, world.site)
    async with world.runtime.sessions() as session, session.begin():  # written before jobs existed
        await session.execute(delete(ProviderJob))
    await restarted.start()
    try:
        await world.clock.advance(0)  # the jobs' first round: the sweep
        assert len(await recording_jobs(world)) == 1
        await world.clock.advance(RECORDING_DELAYS[0] + 1)
        assert (await legs(world, lead_id))[LegRole.VISITOR].recording_url
    finally:
        await restarted.close()


async def test_a_recording_that_never_turns_up_is_given_up_and_the_owner_told(database_url: str) -> None:
    world = await recorded_world(database_url, lambda clock: Forgetful(clock, seed=7))
    await world.runtime.start()
    try:
        lead_id = await talked(world)
        await world.clock.advance(sum(RECORDING_DELAYS) + 1)
        assert (await legs(world, lead_id))[LegRole.VISITOR].recording_url is None
        assert (await timeline(world, lead_id)).count(NOT_FOUND) == 1
        (job,) = await recording_jobs(world)
        assert job.detail == "no recording in time" and job.attempts == len(RECORDING_DELAYS)
    finally:
        await world.runtime.close()


async def test_a_site_that_does_not_record_gets_no_job(database_url: str) -> None:
    world = await make_world(database_url, managers=1)
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=20))
    await world.runtime.start()
    try:
        await talked(world)
        assert await recording_jobs(world) == []
    finally:
        await world.runtime.close()


async def test_on_the_hostile_network_every_conversation_gets_its_recording_once(database_url: str) -> None:
    # Half the reports lost, the others held back or repeated, like the status callbacks.
    hostility = Hostility(lose=0.5, action_after_hangup=1.0)
    world = await recorded_world(database_url, lambda clock: SimulatedProvider(clock, seed=4, hostile=hostility),
                                 lose_reports=False)
    sim, clock = world.sim, world.clock
    await world.runtime.start()
    try:
        lead_ids = []
        for i in range(8):
            phone = f"+485012{i:05d}"
            sim.script(phone, Behaviour.answers(after=2, talk_for=20))
            lead_ids.append((await world.submit(phone)).id)
            await world.until_status(lead_ids[-1], "completed", "missed", "unreachable", limit=600)
        await clock.advance(sum(RECORDING_DELAYS))
        talked = [lead_id for lead_id in lead_ids if (await world.lead(lead_id)).outcome == "talked"]
        assert len(talked) >= 6
        for lead_id in talked:
            assert (await legs(world, lead_id))[LegRole.VISITOR].recording_url
            assert (await timeline(world, lead_id)).count(READY) == 1
        details = Counter(job.detail for job in await recording_jobs(world))
        assert details[None] >= 1 and details["reported"] >= 1  # some lost and looked up, some reported
        assert sum(details.values()) == len(talked)
    finally:
        await world.runtime.close()
