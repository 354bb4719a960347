"""Daily caps on calls and spend: past a cap a request is kept as a message or moved to the next morning,
never dialed today, and the owner is told (timeline and one site notice per cap per day)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from dialer.core.states import LeadStatus
from dialer.db.models import CallLeg, Lead, LeadEvent, SiteNotice
from dialer.protection import caps
from tests.server.test_abuse_support import AbuseApi, abuse_api

NUMBERS = [f"+4850124{i:04d}" for i in range(10)]
# 12:00 UTC is 13:00 in Warsaw, the shop's time zone.
NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(database_url: str) -> Iterator[AbuseApi]:
    with abuse_api(database_url, {"abuse": {"form_token": False}}) as api:
        yield api


def lead_of(api: AbuseApi, lead_id: str) -> Lead:
    return api.call(api.world.lead, lead_id)  # type: ignore[no-any-return]


def rows(api: AbuseApi, model: type, *where: object) -> list:  # type: ignore[type-arg]
    async def go() -> list:  # type: ignore[type-arg]
        async with api.world.runtime.sessions() as session:
            return list((await session.execute(select(model).where(*where))).scalars())

    return api.call(go)  # type: ignore[no-any-return]


def test_past_the_daily_call_cap_requests_become_messages_and_the_owner_is_told(api: AbuseApi) -> None:
    api.settings(daily_calls=2)
    ids = []
    for i, number in enumerate(NUMBERS[:4]):
        created = api.post(phone=number, ip=f"203.0.113.{i}")
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    assert [lead_of(api, i).kind for i in ids] == ["call", "call", "message", "message"]
    capped = lead_of(api, ids[2])
    assert capped.status == LeadStatus.RECEIVED and capped.wake_at is None
    lines = rows(api, LeadEvent, LeadEvent.lead_id == ids[2], LeadEvent.kind == "cap")
    assert len(lines) == 1 and "daily cap of 2 calls reached" in lines[0].detail
    notices = rows(api, SiteNotice)
    assert len(notices) == 1 and notices[0].kind == "daily_call_cap" and notices[0].day == "2026-11-02"
    api.advance(600)
    dialed = {call.to for call in api.world.sim.dialed}
    assert set(NUMBERS[:2]) <= dialed  # the first two were called back...
    assert not dialed & set(NUMBERS[2:4])  # ...the capped visitors were never dialed


def test_the_cap_counts_the_sites_own_day(api: AbuseApi) -> None:
    api.settings(daily_calls=1, calling_window=["00:00", "24:00"])  # visitors who may be called at night
    assert api.post(phone=NUMBERS[0], ip="203.0.113.1").status_code == 201
    api.advance(10 * 3600)  # 23:00 in Warsaw: still the same day there
    assert api.post(phone=NUMBERS[1], ip="203.0.113.2").json()["status"] == "received"
    api.advance(3600)  # 00:00 in Warsaw (23:00 UTC, still 2 November in UTC): a new day for the shop
    assert api.post(phone=NUMBERS[2], ip="203.0.113.3").json()["status"] == "queued"


def test_past_the_cap_a_site_can_schedule_for_the_next_morning_instead(api: AbuseApi) -> None:
    api.settings(daily_calls=1, over_cap="next_day", next_day_at="09:30")
    assert api.post(phone=NUMBERS[0], ip="203.0.113.1").status_code == 201
    later = api.post(phone=NUMBERS[1], ip="203.0.113.2").json()
    assert later["status"] == "scheduled"
    assert datetime.fromisoformat(later["scheduled_for"]) == datetime(2026, 11, 3, 8, 30, tzinfo=UTC)  # 09:30 CET
    lead = lead_of(api, later["id"])
    assert lead.kind == "call" and lead.scheduled_for == datetime(2026, 11, 3, 8, 30, tzinfo=UTC)
    api.advance(3600)
    assert NUMBERS[1] not in {call.to for call in api.world.sim.dialed}


def test_past_the_daily_spend_cap_requests_become_messages(api: AbuseApi) -> None:
    api.settings(daily_spend="1.50")
    first = api.post(phone=NUMBERS[0], ip="203.0.113.1").json()
    _price_leg(api, first["id"], Decimal("-1.20"), api.world.clock.now())  # Twilio reports costs as negatives
    assert api.post(phone=NUMBERS[1], ip="203.0.113.2").json()["status"] == "queued"
    _price_leg(api, first["id"], Decimal("0.40"), api.world.clock.now(), step="a1:m2")
    assert api.post(phone=NUMBERS[2], ip="203.0.113.3").json()["status"] == "received"
    notices = rows(api, SiteNotice)
    assert [n.kind for n in notices] == ["daily_spend_cap"] and "1.50 USD" in notices[0].detail


def test_spend_from_yesterday_does_not_count(api: AbuseApi) -> None:
    api.settings(daily_spend="1")
    first = api.post(phone=NUMBERS[0], ip="203.0.113.1").json()
    _price_leg(api, first["id"], Decimal("5"), datetime(2026, 11, 1, 22, 59, tzinfo=UTC))  # 23:59 in Warsaw
    assert api.post(phone=NUMBERS[1], ip="203.0.113.2").json()["status"] == "queued"


def test_a_call_the_visitor_booked_for_another_day_is_not_capped(api: AbuseApi) -> None:
    api.settings(daily_calls=0)
    booked = api.post(phone=NUMBERS[0], scheduled_for="2026-11-04T10:00:00+01:00").json()
    assert booked["status"] == "scheduled" and lead_of(api, booked["id"]).kind == "call"
    assert api.post(phone=NUMBERS[1], ip="203.0.113.2").json()["status"] == "received"


def test_caps_can_be_switched_off(api: AbuseApi) -> None:
    api.settings(daily_calls=None, daily_spend=None)
    for i, number in enumerate(NUMBERS[:3]):
        assert api.post(phone=number, ip=f"203.0.113.{i}").json()["status"] == "queued"


def test_the_dashboard_reads_the_notices(api: AbuseApi) -> None:
    api.settings(daily_calls=0)
    api.post(phone=NUMBERS[0])

    async def read() -> list[SiteNotice]:
        async with api.world.runtime.sessions() as session:
            return await caps.notices(session, api.world.site.id)

    found = api.call(read)
    assert len(found) == 1 and found[0].seen_at is None and "kept as a message" in found[0].detail

    async def seen(site_id: int) -> bool:
        async with api.world.runtime.sessions() as session, session.begin():
            return await caps.mark_seen(session, site_id, found[0].id, api.world.clock.now())

    assert api.call(seen, api.world.site.id + 1) is False  # another site's owner cannot touch it
    assert api.call(seen, api.world.site.id) is True
    assert api.call(read) == []


def _price_leg(api: AbuseApi, lead_id: str, price: Decimal, at: datetime, step: str = "a1:m1") -> None:
    async def go() -> None:
        async with api.world.runtime.sessions() as session, session.begin():
            existing = (await session.execute(
                select(CallLeg).where(CallLeg.lead_id == lead_id, CallLeg.step == step))).scalar_one_or_none()
            if existing is not None:
                existing.price, existing.created_at = price, at
            else:
                session.add(CallLeg(lead_id=lead_id, step=step, role="manager", to_number="+12025550101",
                                    status="ended", created_at=at, price=price, price_unit="USD"))

    api.call(go)
