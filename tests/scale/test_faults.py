"""Faults in the middle of a hunt, for real: a web process and a worker on PostgreSQL (and Redis), a few
dozen leads at once, the simulator sped up. Each test strikes once the hunt is well under way and then
checks what a user would notice: every lead ended right (everybody answers here, so every lead
completes), no step was dialed twice (the shared dial log), no manager left busy. How long the fault held
leads up is measured with probe leads and printed on a `FAULT …` line (never asserted).

- all the engine's database connections killed (`pg_terminate_backend`) several times;
- the database refusing connections for 10 s (a proxy between the worker and PostgreSQL, stopped and
  started);
- Redis stopped and restarted (its own `redis-server`): intake goes on answering, nothing is restarted;
- the worker killed with SIGKILL during bridged calls: the restarted worker asks the provider about the
  calls it had (reconciliation) and frees their managers within a minute.

A provider report whose step fails on the database is held and applied later, before anything newer is
decided on its lead, so with connections killed and with Redis away everybody is called once
(`once_each=True`). Everywhere, no visitor is called again after a call on which they talked (as the
simulated network logged it). With the database refusing for 10 s (200 s of the sped-up hunt), a visitor
is dialed at most once per attempt; a later attempt may call them again after a call that did not connect.
After a kill -9 the calls in progress die with the worker's simulated network: a visitor whose call was
still being set up (not yet connected, as far as the engine knew) is dialed again in the same attempt with
the next manager, which is right; one who was talking is not called again. Repeats are counted and
printed (`called_again…`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from sqlalchemy import text

from dialer import db
from dialer.broadcast.redis_pubsub import RedisBroadcast
from dialer.core.states import TERMINAL, LeadStatus
from tests.broadcast.servers import OwnRedis
from tests.conftest import _truncate
from tests.harness.tcp_proxy import TcpProxy
from tests.scale.hunt import LEADS, SPEED, Hunt, report, seed, spread

PROBES = 2


def _emptied(url: str) -> None:
    """The tables emptied; the PostgreSQL server is shared with other tests, whose connections may fill
    it for a moment ("too many clients"): tried again."""
    for _ in range(40):
        try:
            _truncate(url)
            return
        except Exception as exc:
            if "too many clients" not in str(exc):
                raise
            time.sleep(0.25)
    _truncate(url)


@pytest.fixture
async def hunt(postgresql_url: str, tmp_path: Path) -> AsyncIterator[Hunt]:
    _emptied(postgresql_url)
    h = await seed(postgresql_url, tmp_path, "")
    yield h
    await h.close()


async def _baseline(hunt: Hunt) -> list[float]:
    """How long a probe waits for its first call with nothing wrong (the same hunt, before the fault)."""
    return await hunt.probe_delays(await hunt.probe(PROBES, first=100))




async def test_engine_connections_killed_several_times(hunt: Hunt) -> None:
    await hunt.start("serve")
    await hunt.start("worker")
    await hunt.submit(LEADS)
    normal = await _baseline(hunt)
    await hunt.until_dialed(LEADS // 2)
    engine = db.create_engine(hunt.url)
    killed = 0
    probes: list[str] = []
    try:
        for round_ in range(4):
            async with engine.connect() as conn:
                result = await conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ))
                killed += sum(1 for (done,) in result if done)
            probes += await hunt.probe(1, first=round_)
            await asyncio.sleep(1.0)  # the next blow a moment later (the fault's rhythm, not a wait)
    finally:
        await engine.dispose()
    assert killed >= 4, "no engine connection was killed: nothing was tested"
    delays = await hunt.probe_delays(probes)
    again = await hunt.check_every_lead_ended_right(once_each=True)
    report("pg_terminate_backend x4", connections_killed=killed, probe_normal=spread(normal),
           probe_after_kill=spread(delays), called_again_in_a_later_attempt=again)


async def test_database_refusing_connections_for_ten_seconds(hunt: Hunt) -> None:
    where = urlsplit(hunt.url.replace("postgresql+asyncpg", "postgresql"))
    proxy = TcpProxy(where.hostname or "127.0.0.1", where.port or 5432)
    await proxy.start()
    through = hunt.url.replace(f"{where.hostname}:{where.port or 5432}", f"127.0.0.1:{proxy.port}")
    try:
        await hunt.start("serve")
        await hunt.start("worker", RINGBACK_DATABASE_URL=through)
        await hunt.submit(LEADS)
        normal = await _baseline(hunt)
        await hunt.until_dialed(LEADS // 2)
        await proxy.refuse()
        down = time.monotonic()
        probes = await hunt.probe(PROBES)  # written by a process that can still reach the database
        await asyncio.sleep(10.0)  # the outage itself
        assert not any(t > down + 0.5 for t in hunt.seen.values()), "the worker dialed with the database away"
        await proxy.resume()
        back = time.monotonic()
        delays = await hunt.probe_delays(probes, since=back)
        # Held reports are applied first, in order, on the step that next touches their lead: a visitor
        # is dialed at most once per attempt, never again after they talked.
        again = await hunt.check_every_lead_ended_right(once_each=False)
    finally:
        await proxy.close()
    report("database refused 10 s", probe_normal=spread(normal), probe_after_return=spread(delays),
           connections_through_proxy=proxy.connections, called_again_in_a_later_attempt=again)


async def test_redis_stopped_and_restarted(postgresql_url: str, tmp_path: Path) -> None:
    _emptied(postgresql_url)
    redis = OwnRedis()
    redis.start()
    hunt = await seed(postgresql_url, tmp_path, redis.url)
    try:
        server = await hunt.start("serve")
        worker = await hunt.start("worker")
        await hunt.submit(LEADS)
        normal = await _baseline(hunt)
        await hunt.until_dialed(LEADS // 2)
        redis.stop()
        # Intake goes on answering (the rate limits fall back to the database), and the leads are called.
        during = await hunt.submit(PROBES, first=LEADS, site=hunt.probe_site)
        away = await hunt.probe_delays(during, since=time.monotonic())
        async with httpx2.AsyncClient(timeout=10) as http:
            health = await http.get(f"http://127.0.0.1:{hunt.port}/healthz")
        assert health.status_code < 500
        redis.start()
        # Live updates flow through Redis again, without restarting anything: a dashboard listening to
        # the probe site hears of the leads submitted now.
        ears = RedisBroadcast(redis.url, prefix=hunt.env["RINGBACK_REDIS_PREFIX"])
        try:
            async with ears.subscribe(f"site:{hunt.probe_site_id}") as updates:
                after = await hunt.submit(PROBES, first=LEADS + PROBES, site=hunt.probe_site)
                back = await hunt.probe_delays(after, since=time.monotonic())
                heard: set[str] = set()
                async with asyncio.timeout(60):
                    async for message in updates:
                        heard.add(str(message["id"]))
                        if set(after) <= heard:
                            break
        finally:
            await ears.close()
        again = await hunt.check_every_lead_ended_right(once_each=True)
        assert server.pid and worker.pid and all(p._proc and p._proc.returncode is None for p in (server, worker))
    finally:
        await hunt.close()
        redis.stop()
    report("Redis stopped and restarted", probe_normal=spread(normal), intake_with_redis_away=spread(away),
           after_redis_back=spread(back), called_again_in_a_later_attempt=again)


async def test_worker_killed_during_bridged_calls(hunt: Hunt) -> None:
    await hunt.start("serve")
    worker = await hunt.start("worker", name="worker 1")
    await hunt.submit(LEADS)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 60
    while True:  # strike once several visitors are talking to managers
        statuses = await hunt.statuses()
        connected = {i for i, s in statuses.items() if s == LeadStatus.CONNECTED}
        if len(connected) >= 5:
            break
        assert loop.time() < give_up, "no bridged calls to strike during"
        await asyncio.sleep(0.1)
    worker.kill()
    assert await worker.wait(10) == -9
    busy = await hunt.busy()
    statuses = await hunt.statuses()
    stuck = {lead for lead in busy.values() if statuses[lead] not in TERMINAL}
    held = {m for m, lead in busy.items() if lead in stuck}
    assert stuck & connected, "the killed worker held no bridged call: nothing was tested"
    await hunt.start("worker", name="worker 2")
    restarted = time.monotonic()
    freed_at: dict[int, float] = {}
    give_up = loop.time() + 60  # the promise: managers freed within a minute of the restart
    while len(freed_at) < len(held):
        now_busy = await hunt.busy()
        for manager in held - freed_at.keys():
            if now_busy.get(manager) not in stuck:
                freed_at[manager] = time.monotonic() - restarted
        assert loop.time() < give_up, f"{len(held) - len(freed_at)} of {len(held)} managers still held a minute on"
        await asyncio.sleep(0.2)
    # A visitor whose call died unconnected with the worker is dialed again with the next manager, in the
    # same attempt; never one who was talking.
    again = await hunt.check_every_lead_ended_right(once_each=False, once_per_attempt=False)
    waits = sorted(freed_at.values())
    report("worker SIGKILL during bridged calls", bridged_at_kill=len(stuck & connected), managers_held=len(held),
           freed_after_restart=spread(waits), freed_after_restart_simulated=f"{waits[-1] * SPEED:.0f} s",
           called_again_in_a_later_attempt=again)
