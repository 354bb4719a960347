"""Scale-out for real: two `ringback serve` processes (web only) and two `ringback worker` processes on one
PostgreSQL and one Redis. A few hundred leads go through the simulator; one worker is killed with SIGKILL
in the middle. Every lead still ends, no step is dialed twice, and a visitor's WebSocket on one server
follows what the workers do.

Each process has its own simulated network; they share one dial log (`RINGBACK_SIMULATOR_LOG`), the
record this test reads to see who dialed what.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
import websockets
from sqlalchemy import select

from dialer import db
from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.core.abuse_rules import UNGUARDED
from dialer.core.states import TERMINAL
from dialer.db.models import CallLeg, Lead
from dialer.sites.admin import add_manager, add_site
from tests.conftest import _truncate
from tests.harness import REDIS_URL
from tests.scale.cluster import Process, free_port

LEADS = 200
SITES = 20
MANAGERS_PER_SITE = 5
SPEED = 10  # a lead's simulated minute and a half takes about nine real seconds
DEADLINE = 300.0  # real seconds for the whole run
WATCHED = 8  # leads a visitor follows on server A, each submitted through server B


@dataclass
class Cluster:
    url: str
    env: dict[str, str]
    cwd: Path
    dial_log: Path
    sites: list[tuple[int, str]]  # (id, key)


def _daytime_zone() -> str:
    """A visitor time zone where it is about noon now, so calling hours never hold a lead back."""
    offset = 12 - datetime.now(UTC).hour
    offset = offset - 24 if offset > 12 else offset
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs: Etc/GMT-3 is UTC+3


@pytest.fixture
def cluster(postgresql_url: str, tmp_path: Path) -> Iterator[Cluster]:
    _truncate(postgresql_url)

    async def seed() -> list[tuple[int, str]]:
        engine = db.create_engine(postgresql_url)
        sites = []
        async with db.sessionmaker(engine)() as session, session.begin():
            now = datetime.now(UTC)
            for s in range(SITES):
                site = await add_site(session, name=f"Shop {s}", key=f"shop{s}", timezone="UTC", any_country=True, now=now)
                # Hundreds of requests from one address, by design; visitors callable at any hour, so the test
                # runs the same whatever the time of day.
                site.settings = {"abuse": UNGUARDED, "calling_window": ["00:00", "24:00"]}
                for m in range(MANAGERS_PER_SITE):
                    phone = f"+120255501{s * MANAGERS_PER_SITE + m:02d}"
                    await add_manager(session, site=site, name=f"M{s}.{m}", phone=phone)
                sites.append((site.id, site.key))
        await engine.dispose()
        return sites

    sites = asyncio.run(seed())
    dial_log = tmp_path / "dials.jsonl"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RINGBACK_DATABASE_URL": postgresql_url,
        "RINGBACK_REDIS_URL": REDIS_URL,
        "RINGBACK_REDIS_PREFIX": f"test-{secrets.token_hex(6)}:",
        "RINGBACK_SECRET_KEY": secrets.token_urlsafe(32),
        "RINGBACK_SIMULATOR_SPEED": str(SPEED),
        "RINGBACK_SIMULATOR_LOG": str(dial_log),
        # Calls of the killed worker die with it; their leads end at this limit instead of after 4 hours
        # (real seconds: the speed makes the simulated people quicker, not the server's clock).
        "RINGBACK_MAX_CALL_SECONDS": "18",
        # A visitor whose ringing call died with the killed worker is called again in a later attempt
        # (nobody reported an answer): 15 real seconds on, instead of three minutes of the test's time.
        "RINGBACK_RETRY_SECONDS": "15",
    }
    yield Cluster(postgresql_url, env, tmp_path, dial_log, sites)


async def _statuses(url: str) -> dict[str, str]:
    engine = db.create_engine(url)
    try:
        async with db.sessionmaker(engine)() as session:
            return {row.id: row.status for row in await session.execute(select(Lead.id, Lead.status))}
    finally:
        await engine.dispose()


async def _legs(url: str) -> list[CallLeg]:
    engine = db.create_engine(url)
    try:
        async with db.sessionmaker(engine)() as session:
            return list((await session.execute(select(CallLeg))).scalars())
    finally:
        await engine.dispose()


def _dials(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _keep_log(proc: Process, where: Path) -> None:
    (where / f"{proc.name.replace(' ', '-')}.log").write_text("\n".join(proc.lines))


async def _follow(port: int, lead_id: str, token: str, seen: list[dict[str, object]]) -> None:
    """What a visitor's widget is told on one server, until the lead is over and the server closes."""
    url = f"ws://127.0.0.1:{port}/api/v1/callbacks/{lead_id}/live?token={token}"
    async with websockets.connect(url, open_timeout=10) as ws:
        async for raw in ws:
            seen.append(json.loads(raw))


async def test_two_servers_two_workers_survive_a_killed_worker(cluster: Cluster) -> None:
    ports = [free_port(), free_port()]
    servers = [
        Process(f"server {i}", ["serve", "--no-engine", "--port", str(port)], cluster.env, cluster.cwd)
        for i, port in enumerate(ports)
    ]
    workers = [Process(f"worker {i}", ["worker"], cluster.env, cluster.cwd) for i in range(2)]
    ears = RedisBroadcast(REDIS_URL, prefix=cluster.env["RINGBACK_REDIS_PREFIX"])
    async with contextlib.AsyncExitStack() as stack:
        for proc in (*servers, *workers):
            stack.push_async_callback(proc.stop)
            stack.callback(_keep_log, proc, cluster.cwd)
        stack.push_async_callback(ears.close)
        listening: list[asyncio.Task[None]] = []
        stack.callback(lambda: [task.cancel() for task in listening])
        await asyncio.gather(
            *(s.start("Uvicorn running on") for s in servers), *(w.start("worker started") for w in workers)
        )

        # The test listens to every site's updates as the dashboard would: it knows when to strike and
        # when all is over without polling.
        updates: asyncio.Queue[dict[str, object]] = asyncio.Queue()

        async def listen(site_id: int, ready: asyncio.Event) -> None:
            async with ears.subscribe(f"site:{site_id}") as sub:
                ready.set()
                async for message in sub:
                    updates.put_nowait(message)

        for site_id, _ in cluster.sites:
            ready = asyncio.Event()
            listening.append(asyncio.create_task(listen(site_id, ready)))
            await asyncio.wait_for(ready.wait(), 10)

        zone = _daytime_zone()
        async with httpx2.AsyncClient(timeout=30) as http:

            async def submit(i: int) -> tuple[int, dict[str, str]]:
                port = ports[i % 2]
                body = {"site": cluster.sites[i % SITES][1], "phone": f"+48501{200000 + i:06d}", "timezone": zone}
                response = await http.post(f"http://127.0.0.1:{port}/api/v1/callbacks", json=body)
                assert response.status_code == 201, response.text
                return i, response.json()

            gate = asyncio.Semaphore(10)

            async def submit_gated(i: int) -> tuple[int, dict[str, str]]:
                async with gate:
                    return await submit(i)

            followers: list[asyncio.Task[None]] = []
            seen: list[list[dict[str, object]]] = []
            leads: dict[str, dict[str, str]] = {}
            for done in asyncio.as_completed([submit_gated(i) for i in range(LEADS)]):
                i, lead = await done
                leads[lead["id"]] = lead
                if i % 2 == 1 and len(followers) < WATCHED:  # submitted through B, followed on A
                    seen.append([])
                    followers.append(asyncio.create_task(_follow(ports[0], lead["id"], lead["token"], seen[-1])))
        assert len(leads) == LEADS

        # Kill worker 0 once a third of the leads are over, while it is in the middle of others.
        ended: set[str] = set()
        killed_holding: set[str] = set()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + DEADLINE
        while len(ended) < LEADS:
            assert loop.time() < give_up, f"only {len(ended)} of {LEADS} leads ended in {DEADLINE} s"
            try:
                message = await asyncio.wait_for(updates.get(), 2.0)
                if message["status"] in TERMINAL:
                    ended.add(str(message["id"]))
                    if len(ended) % 20 == 0:
                        print(f"{loop.time() - give_up + DEADLINE:.1f} s: {len(ended)} ended", flush=True)
            except TimeoutError:
                # A quiet moment: the database is the truth (an update may die with the killed worker).
                ended = {i for i, s in (await _statuses(cluster.url)).items() if s in TERMINAL}
            if not killed_holding and len(ended) >= LEADS // 3:
                workers[0].kill()
                assert await workers[0].wait(10) == -9
                legs = {leg.id: leg.lead_id for leg in await _legs(cluster.url)}
                statuses = await _statuses(cluster.url)
                killed_holding = {
                    legs[str(d["leg_id"])] for d in _dials(cluster.dial_log)
                    if d["pid"] == workers[0].pid and statuses[legs[str(d["leg_id"])]] not in TERMINAL
                }
                assert killed_holding, "worker 0 held no lead when it was killed: nothing was tested"
                ended = {i for i, s in statuses.items() if s in TERMINAL}

        # The surviving worker, told to stop, stops cleanly once its calls are over.
        assert await workers[1].stop(timeout=40) == 0
        assert any("worker stopping" in line for line in workers[1].lines)

        _, open_still = await asyncio.wait(followers, timeout=60)
        statuses = await _statuses(cluster.url)
        assert not open_still, [([m["status"] for m in w], statuses[str(w[0]["id"])]) for w in seen]

    statuses = await _statuses(cluster.url)
    assert all(s in TERMINAL for s in statuses.values()), Counter(statuses.values())
    assert len(statuses) == LEADS
    # The leads the killed worker was calling were finished by the other engines.
    assert all(statuses[i] in TERMINAL for i in killed_holding)

    # No step was dialed twice: every placed call in the shared log is a different leg, and a leg is one
    # (lead, step). Every leg the database knows a call id for was dialed exactly once.
    dials = _dials(cluster.dial_log)
    per_leg = Counter(str(d["leg_id"]) for d in dials)
    assert per_leg and max(per_leg.values()) == 1, per_leg.most_common(3)
    legs = await _legs(cluster.url)
    assert len({(leg.lead_id, leg.step) for leg in legs}) == len(legs)
    assert {leg.id for leg in legs if leg.provider_sid} <= set(per_leg)
    dialers = Counter(d["pid"] for d in dials)
    assert set(dialers) == {w.pid for w in workers}, "the web-only servers dial nobody; both workers did"

    # The visitors following on server A saw, live, what the workers did, up to the lead's end.
    for watched in seen:
        lead_id = str(watched[0]["id"])
        versions = [int(str(m["version"])) for m in watched]
        assert versions == sorted(set(versions))
        assert watched[-1]["status"] == statuses[lead_id]
    assert any(len(watched) >= 3 for watched in seen), [[m["status"] for m in w] for w in seen]
