"""Time, capacity and follow-through in the engine: windows, scheduling, queueing, routing, promises."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from dialer.db.models import CallLeg, Lead, LeadEvent, Manager, Site
from dialer.telephony.simulator import Behaviour
from tests.conftest import MANAGER_PHONES, World, make_world

WARSAW = ZoneInfo("Europe/Warsaw")
VISITOR = "+48501234567"
VLADIVOSTOK_NUMBER = "+74232123456"


def warsaw(*args: int) -> datetime:
    return datetime(*args, tzinfo=WARSAW).astimezone(UTC)  # type: ignore[misc]


async def site_settings(world: World, **values: object) -> None:
    async with world.runtime.sessions() as session, session.begin():
        site = await session.get(Site, world.site.id)
        assert site is not None
        site.settings = {**(site.settings or {}), **values}
        if "routing" in values:
            site.routing = str(values["routing"])


async def timeline(world: World, lead_id: str) -> list[str]:
    async with world.runtime.sessions() as session:
        rows = await session.execute(select(LeadEvent.detail).where(LeadEvent.lead_id == lead_id).order_by(LeadEvent.id))
        return list(rows.scalars())


async def started(world: World) -> World:
    await world.engine.start()
    return world


async def test_a_visitor_in_vladivostok_at_3am_is_called_at_8_their_time(database_url: str) -> None:
    three_am = datetime(2026, 11, 23, 3, 0, tzinfo=ZoneInfo("Asia/Vladivostok"))
    world = await started(await make_world(database_url, start=three_am.astimezone(UTC)))
    world.sim.script(VLADIVOSTOK_NUMBER, Behaviour.answers(after=2, talk_for=30))
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.presses_1(after=2))
    lead = await world.submit(VLADIVOSTOK_NUMBER, timezone="Asia/Vladivostok")
    await world.clock.advance(0)
    scheduled = await world.lead(lead.id)
    eight = datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("Asia/Vladivostok"))
    assert scheduled.status == "scheduled" and scheduled.scheduled_for == eight
    (text,) = world.sim.texts  # the promise, in the visitor's own time
    assert text.to == VLADIVOSTOK_NUMBER and "Mon 23 Nov, 08:00" in text.body
    await world.clock.advance(4 * 3600 + 59 * 60)  # 07:59: nobody dialed, a reminder went out
    assert world.sim.dialed == []
    assert "reminder" in world.sim.texts[-1].body
    await world.until_status(lead.id, "completed")
    assert world.sim.dialed[0].at == eight
    await world.runtime.close()


async def test_a_ring_at_215930_is_placed_one_at_22_is_not(database_url: str) -> None:
    world = await started(await make_world(database_url, start=warsaw(2026, 11, 23, 21, 59, 30)))
    placed = await world.submit(VISITOR)
    await world.clock.advance(0)
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0]]
    assert (await world.lead(placed.id)).status == "calling_manager"
    await world.runtime.close()

    world = await started(await make_world(database_url, start=warsaw(2026, 11, 23, 22, 0, 0), key="other"))
    later = await world.submit(VISITOR)
    await world.clock.advance(0)
    assert world.sim.dialed == []
    lead = await world.lead(later.id)
    assert lead.status == "scheduled" and lead.scheduled_for == warsaw(2026, 11, 24, 8, 0)
    await world.runtime.close()


async def test_a_friday_evening_request_for_a_weekday_shop_is_called_monday_at_opening(database_url: str) -> None:
    world = await make_world(database_url, start=warsaw(2026, 11, 27, 19, 0))
    await site_settings(world, business_hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.clock.advance(0)
    assert (await world.lead(lead.id)).scheduled_for == warsaw(2026, 11, 30, 9, 0)
    await world.clock.advance(2 * 86400 + 13 * 3600)  # Monday 08:00: still nobody dialed
    assert world.sim.dialed == []
    await world.clock.advance(3600)
    assert world.sim.dialed[0].at == warsaw(2026, 11, 30, 9, 0)
    await world.runtime.close()


async def test_a_hunt_interrupted_by_closing_time_goes_on_next_morning(database_url: str) -> None:
    world = await make_world(database_url, start=warsaw(2026, 11, 23, 21, 59, 25))
    world.sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=20))
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.clock.advance(30)  # manager 1 rang out at 21:59:45; a ring to 22:00:05 is too late
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0]]
    assert (await world.lead(lead.id)).status == "scheduled"
    await world.until_status(lead.id, "completed", limit=12 * 3600)
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[0], MANAGER_PHONES[1], VISITOR]
    assert world.sim.dialed[1].at == warsaw(2026, 11, 24, 8, 0)
    await world.runtime.close()


async def test_two_leads_one_manager_the_second_waits_and_is_called_right_after(database_url: str) -> None:
    world = await started(await make_world(database_url, managers=1))
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    world.sim.script("+48501234561", Behaviour.answers(after=2, talk_for=60))
    world.sim.script("+48501234562", Behaviour.answers(after=2, talk_for=60))
    first = await world.submit("+48501234561")
    await world.clock.advance(1)
    second = await world.submit("+48501234562")
    await world.clock.advance(1)
    assert (await world.lead(second.id)).status == "queued"
    done = await world.until_status(first.id, "completed")
    await world.clock.advance(0)
    assert (await world.lead(second.id)).status == "calling_manager"
    assert world.sim.dialed[2].to == MANAGER_PHONES[0] and world.sim.dialed[2].at == done.ended_at
    await world.until_status(second.id, "completed")
    await world.runtime.close()


async def test_the_queue_is_first_in_first_out(database_url: str) -> None:
    world = await started(await make_world(database_url, managers=1))
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    phones = [f"+4850123456{i}" for i in range(4)]
    for phone in phones:
        world.sim.script(phone, Behaviour.answers(after=2, talk_for=40))
    leads = []
    for phone in phones:  # a second apart, while the first call goes on
        leads.append(await world.submit(phone))
        await world.clock.advance(1)
    for lead in leads:
        await world.until_status(lead.id, "completed", limit=4 * 3600)
    visitors = [d.to for d in world.sim.dialed if d.to in phones]
    assert visitors == phones
    await world.runtime.close()


async def test_simultaneous_ring_bridges_exactly_one_manager(database_url: str) -> None:
    world = await make_world(database_url)
    await site_settings(world, routing="simultaneous")
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=6))
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=3))
    world.sim.script(MANAGER_PHONES[2], Behaviour.never_answers())
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.until_status(lead.id, "completed")
    assert {d.to for d in world.sim.dialed[:3]} == set(MANAGER_PHONES)  # all rung at once
    assert all(d.at == world.sim.dialed[0].at for d in world.sim.dialed[:3])
    async with world.runtime.sessions() as session:
        legs = list((await session.execute(select(CallLeg).where(CallLeg.lead_id == lead.id))).scalars())
    bridged = [leg for leg in legs if leg.role == "manager" and leg.accepted]
    assert len(bridged) == 1 and bridged[0].to_number == MANAGER_PHONES[1]
    others = [leg for leg in legs if leg.role == "manager" and not leg.accepted]
    assert all(leg.status == "ended" and leg.ended_at <= bridged[0].answered_at + timedelta(seconds=4)  # type: ignore[operator]
               for leg in others)
    assert all(call.ended for call in world.sim._calls.values())
    await world.runtime.close()


async def test_round_robin_rotates_the_first_manager(database_url: str) -> None:
    world = await make_world(database_url)
    await site_settings(world, routing="round_robin")
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.presses_1(after=2, talk_for=10))
    await world.engine.start()
    firsts = []
    for i in range(3):
        phone = f"+4850123457{i}"
        world.sim.script(phone, Behaviour.answers(after=2, talk_for=10))
        before = len(world.sim.dialed)
        lead = await world.submit(phone)
        await world.until_status(lead.id, "completed")
        firsts.append(world.sim.dialed[before].to)
    assert firsts == list(MANAGER_PHONES)
    await world.runtime.close()


async def test_a_returning_visitor_is_offered_first_to_the_manager_they_spoke_with(world: World) -> None:
    world.sim.script(MANAGER_PHONES[0], Behaviour.never_answers())
    world.sim.script(MANAGER_PHONES[1], Behaviour.presses_1(after=2))
    world.sim.script(VISITOR, Behaviour.answers(after=2, talk_for=30))
    first = await world.submit(VISITOR, visitor_id="v-1")
    await world.until_status(first.id, "completed")
    world.sim.script(MANAGER_PHONES[0], Behaviour.presses_1(after=2))
    before = len(world.sim.dialed)
    again = await world.submit(VISITOR, visitor_id="v-1")
    await world.until_status(again.id, "completed")
    assert world.sim.dialed[before].to == MANAGER_PHONES[1]
    assert any("returning visitor" in line for line in await timeline(world, again.id))


async def test_the_visitor_time_zone_comes_from_the_number_when_missing_or_implausible(world: World) -> None:
    async def zone_of(**fields: object) -> tuple[str, str]:
        lead = await world.submit(VLADIVOSTOK_NUMBER, **fields)
        return lead.timezone, (await timeline(world, lead.id))[0]

    zone, line = await zone_of(timezone="Asia/Vladivostok")
    assert zone == "Asia/Vladivostok" and "from the browser" in line
    zone, line = await zone_of(timezone="America/New_York")
    assert zone == "Asia/Vladivostok" and "unlikely" in line
    lead = await world.submit("+79141234567", timezone=None)  # a mobile range spanning many zones
    assert lead.timezone == "Asia/Kamchatka"  # the earliest-closing of them
    assert "from the phone number" in (await timeline(world, lead.id))[0]


async def test_managers_outside_their_working_hours_are_not_rung(database_url: str) -> None:
    world = await make_world(database_url, start=warsaw(2026, 11, 23, 10, 0))
    async with world.runtime.sessions() as session, session.begin():
        await session.execute(update(Manager).where(Manager.phone == MANAGER_PHONES[0])
                              .values(working_hours={"mon": [["14:00", "18:00"]]}))
    await world.engine.start()
    lead = await world.submit(VISITOR)
    await world.clock.advance(0)
    assert [d.to for d in world.sim.dialed] == [MANAGER_PHONES[1]]
    assert (await world.lead(lead.id)).status == "calling_manager"
    await world.runtime.close()


async def test_a_scheduled_lead_survives_a_restart_and_is_called_at_its_time(database_url: str) -> None:
    world = await make_world(database_url, start=warsaw(2026, 11, 23, 10, 0))
    await world.engine.start()
    when = warsaw(2026, 11, 23, 15, 0)
    lead = await world.submit(VISITOR, scheduled_for=when)
    await world.clock.advance(60)
    await world.engine.stop()
    await world.clock.advance(3600)
    engine = world.engine.__class__(world.runtime.sessions, world.sim, world.clock, world.runtime.broadcast,
                                    poll_interval=None)
    await engine.start()
    await world.clock.advance(3 * 3600 + 58 * 60)  # 14:59
    assert world.sim.dialed == []
    done = await world.until_status(lead.id, "completed")
    assert world.sim.dialed[0].at == when
    assert done.status == "completed"
    bodies = [t.body for t in world.sim.texts]
    assert "Mon 23 Nov, 15:00" in bodies[0] and "reminder" in bodies[1]
    await engine.stop()
    await world.runtime.close()


async def test_a_missed_lead_is_told_honestly_with_a_link_to_pick_a_new_time(world: World) -> None:
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())
    lead = await world.submit(VISITOR)
    await world.until_status(lead.id, "missed")
    (text,) = world.sim.texts
    assert "sorry" in text.body.lower() and f"/callback/{lead.id}?sig=" in text.body
    async with world.runtime.sessions() as session:
        stored = await session.get(Lead, lead.id)
        assert stored is not None and stored.handled_at is None  # flagged until someone handles it


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dialer.core.hours import Weekly  # noqa: E402


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    start=st.datetimes(min_value=datetime(2026, 3, 27), max_value=datetime(2026, 11, 3)).map(
        lambda d: d.replace(tzinfo=UTC, microsecond=0)),
    zone=st.sampled_from(["Europe/Warsaw", "America/New_York", "Asia/Kolkata", "Asia/Vladivostok"]),
)  # each zone with a number from there, so the browser's zone is believed
async def test_no_call_is_ever_placed_outside_the_visitors_window(sqlite_url: str, start: datetime, zone: str) -> None:
    from tests.conftest import truncate

    await truncate(sqlite_url)
    world = await make_world(sqlite_url, start=start)
    for phone in MANAGER_PHONES:
        world.sim.script(phone, Behaviour.never_answers())
    await world.engine.start()
    numbers = {"Europe/Warsaw": VISITOR, "America/New_York": "+12125550123", "Asia/Kolkata": "+919876543210",
               "Asia/Vladivostok": VLADIVOSTOK_NUMBER}
    lead = await world.submit(numbers[zone], timezone=zone)
    assert lead.timezone == zone
    await world.until_status(lead.id, "missed", limit=3 * 86400)
    window = Weekly.every_day(zone, time(8), time(22))
    assert world.sim.dialed
    for dial in world.sim.dialed:
        assert window.is_open(dial.at) and window.is_open(dial.at + timedelta(seconds=19))
    await world.runtime.close()
