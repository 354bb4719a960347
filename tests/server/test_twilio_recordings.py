"""A recorded call's recording reaches the lead even when Twilio's recording callback is lost: a durable
job lists the call's recordings through the real `twilio` library (against the stand-in), survives a
restart, and a callback that comes after all changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import aiohttp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from dialer import db
from dialer.accounts import passwords
from dialer.accounts.users import add_user
from dialer.core.machine import Policy
from dialer.db.models import ProviderJob
from tests.twilio_standin import Hostility, Person, TwilioStandIn
from tests.twilio_standin.ringback import MANAGER_PHONES, VISITOR, Line, eventually

OWNER, PASSWORD = "owner@shop.example", "correct horse battery"
READY = "recording of the visitor leg is ready"
FAST = {"recording_delays": (0.2,) * 5}
# The engine's own deadlines in seconds, for when a status callback is lost.
HOSTILE = Policy(ring_timeout=5, whisper_seconds=3, grace=1, check_seconds=1, retry_delay=1, visitor_retries=1,
                 connected_check=2)


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn() as standin:
        standin.people[MANAGER_PHONES[0]] = Person.pressing("1")
        standin.people[VISITOR] = Person(talk_for=30)
        yield standin


@pytest.fixture(autouse=True)
def quick_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


async def talked(line: Line, twilio: TwilioStandIn) -> str:
    """A lead whose visitor talked to the first manager, over on the stand-in (its callbacks sent or lost)."""
    lead = await line.request_callback()
    await line.until_status(lead["id"], "completed")
    await twilio.until_over(*twilio.network.calls.values())
    return str(lead["id"])


async def recording_of(line: Line, lead_id: str) -> str:
    async def found() -> str | None:
        visitor = [leg for leg in await line.legs(lead_id) if leg.role == "visitor"]
        return visitor[0].recording_url if visitor else None

    return await eventually(found)


async def jobs(line: Line) -> list[ProviderJob]:
    assert line.sessions is not None
    async with line.sessions() as session:
        return list((await session.execute(select(ProviderJob).where(ProviderJob.kind == "recording"))).scalars())


async def finished_jobs(line: Line) -> list[ProviderJob]:
    return [job for job in await jobs(line) if job.done_at is not None]


async def dashboard_audio(line: Line, leg_id: str) -> tuple[int, bytes]:
    """Sign in to the dashboard as the owner and play the leg's recording."""
    assert line.sessions is not None
    async with line.sessions() as session, session.begin():
        await add_user(session, email=OWNER, password=PASSWORD, role="owner", now=datetime.now(UTC))
    jar = aiohttp.CookieJar(unsafe=True)  # the server is at an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{line.url}/dashboard/login") as page:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert csrf is not None
        form = {"email": OWNER, "password": PASSWORD, "csrf": csrf.group(1)}
        async with http.post(f"{line.url}/dashboard/login", data=form, allow_redirects=False) as signed_in:
            assert signed_in.status == 303
        async with http.get(f"{line.url}/dashboard/recordings/{leg_id}") as audio:
            return audio.status, await audio.read()


async def test_a_lost_recording_callback_still_puts_the_recording_on_the_lead(
    twilio: TwilioStandIn, database_url: str
) -> None:
    twilio.network.lose_recording_callbacks = True
    async with Line(twilio, database_url, managers=1, provider_options=FAST) as line:
        lead_id = await talked(line, twilio)
        url = await recording_of(line, lead_id)
        (recording,) = twilio.network.recorded.values()
        (manager,) = twilio.network.calls_to(MANAGER_PHONES[0])
        assert recording.call_sid == manager.sid  # Twilio keeps a <Dial>'s recording on the parent call
        assert url == twilio.network.recording_url(recording)
        assert [p for p in twilio.network.lost if "RecordingSid" in p.params]  # the callback never came
        assert (await line.timeline(lead_id)).count(READY) == 1
        (visitor,) = [leg for leg in await line.legs(lead_id) if leg.role == "visitor"]
        status, body = await dashboard_audio(line, visitor.id)
        assert status == 200 and body == twilio.network.recordings[recording.sid]


async def test_the_job_survives_a_restart_and_a_late_callback_changes_nothing(
    twilio: TwilioStandIn, database_url: str
) -> None:
    twilio.network.lose_recording_callbacks = True
    # The first Ringback looks late recordings up only after an hour: it is stopped long before.
    async with Line(twilio, database_url, managers=1, provider_options={"recording_delays": (3600.0,)}) as line:
        lead_id = await talked(line, twilio)
        (job,) = await eventually(lambda: jobs(line))
        first_url = line.url
    assert job.done_at is None and job.subject == twilio.network.calls_to(MANAGER_PHONES[0])[0].sid
    assert ("GET", "Recordings.json") not in twilio.faults.requests
    database = db.create_engine(database_url)
    async with database.begin() as conn:  # the hour passes while Ringback is down
        await conn.execute(update(ProviderJob).values(due_at=job.created_at))
    await database.dispose()
    async with Line(twilio, database_url, managers=1, new_site=False, provider_options=FAST) as line:
        url = await recording_of(line, lead_id)
        # The job is marked done just after the recording it found is applied: wait for that, not the URL.
        (done,) = await eventually(lambda: finished_jobs(line))
        assert done.detail is None
        # Twilio's callback turns up after all, twice (at Ringback's address of now): the leg and its
        # timeline stay as they are.
        (lost,) = [p for p in twilio.network.lost if "RecordingSid" in p.params]
        for _ in range(2):
            assert await line.replay(lost.url.replace(first_url, line.url), lost.params) == 204
        (visitor,) = [leg for leg in await line.legs(lead_id) if leg.role == "visitor"]
        assert visitor.recording_url == url
        assert (await line.timeline(lead_id)).count(READY) == 1


async def test_a_recording_reported_in_time_is_not_looked_up(twilio: TwilioStandIn, database_url: str) -> None:
    async with Line(twilio, database_url, managers=1, provider_options={"recording_delays": (2.0,)}) as line:
        lead_id = await talked(line, twilio)
        url = await recording_of(line, lead_id)
        # The step that ended the visitor's leg wrote a job, unless the recording was reported before it.
        if await jobs(line):

            async def finished() -> list[ProviderJob] | None:
                found = await jobs(line)
                return found if found[0].done_at is not None else None

            (job,) = await eventually(finished)
            assert job.detail == "reported"
        assert url.startswith(twilio.url)
        assert ("GET", "Recordings.json") not in twilio.faults.requests  # Twilio was asked nothing
        assert (await line.timeline(lead_id)).count(READY) == 1


async def test_on_the_hostile_network_every_conversation_gets_its_recording_once(database_url: str) -> None:
    # Recording callbacks held back, repeated and lost like the status callbacks (most of them lost here:
    # with eight conversations, the chance that none is lost is below one in a thousand).
    with TwilioStandIn(hostile=Hostility(seed=3, lose=0.6)) as twilio:
        twilio.people[MANAGER_PHONES[0]] = Person.pressing("1")
        async with Line(twilio, database_url, managers=1, policy=HOSTILE, provider_options=FAST) as line:
            lead_ids = []
            for i in range(8):
                phone = f"+485012{i:05d}"
                twilio.people[phone] = Person(talk_for=20)
                lead_id = (await line.request_callback(phone))["id"]
                await line.until_status(lead_id, "completed", "missed", "unreachable", "failed", timeout=60)
                lead_ids.append(lead_id)
            await twilio.until_over(*twilio.network.calls.values())
            talked = [lead_id for lead_id in lead_ids if (await line.lead(lead_id)).outcome == "talked"]
            assert len(talked) >= 6
            urls = {lead_id: await recording_of(line, lead_id) for lead_id in talked}
            assert len(set(urls.values())) == len(talked)
            for lead_id in talked:
                assert (await line.timeline(lead_id)).count(READY) == 1
            await eventually(lambda: all_jobs_done(line))
            found_by_job = {job.leg_id for job in await jobs(line) if job.detail is None}
        lost = [p for p in twilio.network.lost if "RecordingSid" in p.params]
        assert lost
        for posted in lost:  # each lost callback was made up for by its leg's job, with the same recording
            leg_id = posted.url.rsplit("leg=", 1)[1]
            assert leg_id in found_by_job
            assert posted.params["RecordingUrl"] in urls.values()


async def all_jobs_done(line: Line) -> bool:
    return all(job.done_at is not None for job in await jobs(line))


