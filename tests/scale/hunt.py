"""A hunt for the fault tests: a web process (`serve --no-engine`) taking requests and a `worker` process
calling, on one PostgreSQL, with the simulator sped up and a shared dial log. The test starts it, puts a
few dozen leads in, strikes mid-hunt, and then checks what a user would: every lead ended right, nobody
was dialed twice, and how long the fault held leads up (measured with probe leads, printed, never
asserted).

Probe leads are written straight into the database (as a web process that can still reach it would) on a
site of their own whose managers are free, so how long they wait for their first call is the fault's
doing, not the queue's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from sqlalchemy import select

from dialer import db
from dialer.core.abuse_rules import UNGUARDED
from dialer.core.records import attempt_of
from dialer.core.states import TERMINAL, LeadStatus, LegRole
from dialer.db.models import CallLeg, Lead, Manager
from dialer.intake.accept import CallbackRequest, accept
from dialer.retrying import database_down
from dialer.sites.admin import add_manager, add_site
from tests.scale.cluster import Process, free_port

LEADS = 16
SITES = 3
MANAGERS_PER_SITE = 5
PROBE_MANAGERS = 6
SPEED = 20  # a simulated minute is three real seconds
DEADLINE = 90.0  # real seconds for a hunt to end once the fault is over
T = TypeVar("T")
READY = {"serve": "Uvicorn running on", "worker": "worker started"}


def daytime_zone() -> str:
    """A visitor time zone where it is about noon now, so calling hours never hold a lead back."""
    offset = 12 - datetime.now(UTC).hour
    offset = offset - 24 if offset > 12 else offset
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX signs: Etc/GMT-3 is UTC+3


@dataclass
class Hunt:
    url: str  # the test's own way to the database (never through a proxy)
    env: dict[str, str]
    cwd: Path
    dial_log: Path
    sites: list[str]  # keys of the bulk sites
    probe_site: str
    probe_site_id: int
    zone: str = field(default_factory=daytime_zone)
    processes: list[Process] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)  # leg id → when (monotonic) its dial was logged
    probes: dict[str, float] = field(default_factory=dict)  # probe lead id → when it was written
    port: int = 0
    _watch: asyncio.Task[None] | None = None

    # processes --------------------------------------------------------------------------------------

    async def start(self, kind: str, *, name: str | None = None, **env: str) -> Process:
        args = ["serve", "--no-engine", "--port", str(self.port or free_port())] if kind == "serve" else ["worker"]
        if kind == "serve":
            self.port = int(args[3])
        proc = Process(name or kind, args, {**self.env, **env}, self.cwd)
        self.processes.append(proc)
        await proc.start(READY[kind], timeout=60)
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_dials())
        return proc

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for proc in self.processes:
            with contextlib.suppress(Exception):
                await proc.stop(timeout=10)
            (self.cwd / f"{proc.name.replace(' ', '-')}-{id(proc)}.log").write_text("\n".join(proc.lines))

    async def _watch_dials(self) -> None:
        """When each dial appears in the shared log, in the test's own time (the processes' clocks are
        sped up and each started at its own moment)."""
        offset = 0
        while True:
            if self.dial_log.exists():
                with self.dial_log.open() as log_file:
                    log_file.seek(offset)
                    chunk = log_file.read()
                complete = chunk[: chunk.rfind("\n") + 1]
                offset += len(complete.encode())
                now = time.monotonic()
                for raw in complete.splitlines():
                    self.seen.setdefault(json.loads(raw)["leg_id"], now)
            await asyncio.sleep(0.05)  # a measurement's resolution, not a synchronisation

    # leads ------------------------------------------------------------------------------------------

    async def submit(self, count: int, *, first: int = 0, site: str | None = None) -> list[str]:
        """`count` visitors ask for a call through the web process (ten at a time), on the bulk sites
        or on `site`."""
        gate = asyncio.Semaphore(10)
        async with httpx2.AsyncClient(timeout=30) as http:

            async def one(i: int) -> str:
                body = {"site": site or self.sites[i % len(self.sites)], "phone": f"+48501{300000 + i:06d}", "timezone": self.zone}
                for _ in range(20):  # a 503 (the database busy with other tests' connections): try again
                    async with gate:
                        response = await http.post(f"http://127.0.0.1:{self.port}/api/v1/callbacks", json=body)
                    if response.status_code != 503:
                        break
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 4)
                assert response.status_code == 201, response.text
                return str(response.json()["id"])

            return list(await asyncio.gather(*(one(i) for i in range(first, first + count))))

    async def probe(self, count: int, *, first: int = 0) -> list[str]:
        """Probe leads, written straight into the database; when each was written is kept."""
        return await _shared_server(lambda: self._probe(count, first))

    async def _probe(self, count: int, first: int) -> list[str]:
        engine = db.create_engine(self.url)
        ids = []
        try:
            async with db.sessionmaker(engine)() as session, session.begin():
                for i in range(first, first + count):
                    req = CallbackRequest(site=self.probe_site, phone=f"+48502{400000 + i:06d}", timezone=self.zone)
                    lead, _ = await accept(session, req, datetime.now(UTC))
                    ids.append(lead.id)
            written = time.monotonic()
            self.probes.update((lead_id, written) for lead_id in ids)
        finally:
            await engine.dispose()
        return ids

    async def first_dials(self, lead_ids: list[str], timeout: float = DEADLINE) -> dict[str, float]:
        """When each lead's first call was seen (monotonic), once all of them were called."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while True:
            legs = await self.legs()
            first: dict[str, float] = {}
            for leg in legs:
                if leg.lead_id in lead_ids and leg.id in self.seen:
                    first[leg.lead_id] = min(first.get(leg.lead_id, float("inf")), self.seen[leg.id])
            if len(first) == len(lead_ids):
                return first
            assert loop.time() < give_up, f"{len(first)} of {len(lead_ids)} leads called within {timeout} s"
            await asyncio.sleep(0.2)

    async def probe_delays(self, lead_ids: list[str], since: float | None = None) -> list[float]:
        """Seconds from each probe's writing (or `since`) to its first call."""
        first = await self.first_dials(lead_ids)
        return sorted(t - (since if since is not None else self.probes[i]) for i, t in first.items())

    async def statuses(self) -> dict[str, str]:
        return {row.id: row.status for row in await self._rows(select(Lead.id, Lead.status))}

    async def legs(self) -> list[Any]:
        """The call legs (rows with CallLeg's columns)."""
        return await self._rows(select(CallLeg))

    async def busy(self) -> dict[int, str]:
        rows = await self._rows(select(Manager.id, Manager.busy_lead_id).where(Manager.busy_lead_id.is_not(None)))
        return {row.id: row.busy_lead_id for row in rows}

    async def _rows(self, query: Any) -> list[Any]:
        return await _shared_server(lambda: self._read(query))

    async def _read(self, query: Any) -> list[Any]:
        engine = db.create_engine(self.url)
        try:
            async with engine.connect() as conn:
                return list(await conn.execute(query))
        finally:
            await engine.dispose()

    async def until_dialed(self, count: int, timeout: float = DEADLINE) -> None:
        """Wait until `count` calls were placed (the hunt is well under way)."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while len(self.seen) < count:
            assert loop.time() < give_up, f"only {len(self.seen)} calls placed in {timeout} s"
            await asyncio.sleep(0.1)

    async def until_all_ended(self, timeout: float = DEADLINE) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while True:
            statuses = await self.statuses()
            if all(s in TERMINAL for s in statuses.values()):
                return statuses
            assert loop.time() < give_up, f"not all leads ended in {timeout} s: {Counter(statuses.values())}"
            await asyncio.sleep(0.5)

    async def check_every_lead_ended_right(self, *, once_each: bool, once_per_attempt: bool = True) -> int:
        """Every lead completed (everybody answers in this hunt), no step (leg) dialed twice, no manager
        left busy, and no visitor called again after they talked: a visitor dialed again for a lead was
        never connected on any earlier call (as the network says; for a call that died with its process,
        as the engine knew). With `once_per_attempt`, nobody is dialed twice in one attempt; with
        `once_each`, nobody twice at all. Returns how many times a visitor was called again."""
        statuses = await self.until_all_ended()
        assert set(statuses.values()) == {LeadStatus.COMPLETED}, Counter(statuses.values())
        dials = [json.loads(line) for line in self.dial_log.read_text().splitlines()]
        per_leg = Counter(str(d["leg_id"]) for d in dials)
        assert max(per_leg.values()) == 1, per_leg.most_common(3)
        legs = {leg.id: leg for leg in await self.legs()}
        assert len({(leg.lead_id, leg.step) for leg in legs.values()}) == len(legs)
        assert {leg.id for leg in legs.values() if leg.provider_sid} <= set(per_leg)
        assert await self.busy() == {}
        ended_log = Path(f"{self.dial_log}.ended")
        ended = {}
        if ended_log.exists():
            ended = {line["sid"]: line for line in map(json.loads, ended_log.read_text().splitlines())}
        calls: dict[str, list[tuple[Any, bool]]] = {}  # each lead's visitor calls, in the order placed
        for d in dials:
            leg = legs[str(d["leg_id"])]
            if leg.role == LegRole.VISITOR:
                talked = ended[d["sid"]]["connected"] if d["sid"] in ended else leg.answered_at is not None
                calls.setdefault(leg.lead_id, []).append((leg, talked))
        again = 0
        for lead_id, placed in calls.items():
            steps = [(attempt_of(leg.step), leg.step, talked) for leg, talked in placed]
            assert not any(talked for _, _, talked in steps[:-1]), f"lead {lead_id} called again after a talk: {steps}"
            attempts = Counter(attempt for attempt, _, _ in steps)
            assert not (once_per_attempt and max(attempts.values()) > 1), f"lead {lead_id}: {steps}"
            again += len(placed) - 1
        assert not (once_each and again), {k: v for k, v in calls.items() if len(v) > 1}
        return again


async def seed(url: str, tmp_path: Path, redis_url: str) -> Hunt:
    engine = db.create_engine(url)
    keys = []
    ids = []
    async with db.sessionmaker(engine)() as session, session.begin():
        now = datetime.now(UTC)
        for s in range(SITES + 1):
            probe = s == SITES
            key = "probe" if probe else f"shop{s}"
            site = await add_site(session, name=key, key=key, timezone="UTC", any_country=True, now=now)
            site.settings = {"abuse": UNGUARDED, "calling_window": ["00:00", "24:00"]}
            for m in range(PROBE_MANAGERS if probe else MANAGERS_PER_SITE):
                await add_manager(session, site=site, name=f"M{s}.{m}", phone=f"+1202555{s:02d}{m:02d}")
            keys.append(key)
            await session.flush()
            ids.append(site.id)
    await engine.dispose()
    dial_log = tmp_path / "dials.jsonl"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "RINGBACK_DATABASE_URL": url,
        "RINGBACK_SECRET_KEY": secrets.token_urlsafe(32),
        "RINGBACK_SIMULATOR_SPEED": str(SPEED),
        "RINGBACK_SIMULATOR_LOG": str(dial_log),
        # The engine's own waits are real seconds: a visitor whose call died unanswered with a killed
        # worker is tried again after 10 s, not the product's 3 minutes, so the hunt ends within the test.
        "RINGBACK_RETRY_SECONDS": "10",
    }
    if redis_url:
        env.update(RINGBACK_REDIS_URL=redis_url, RINGBACK_REDIS_PREFIX=f"test-{secrets.token_hex(6)}:")
    return Hunt(url, env, tmp_path, dial_log, keys[:-1], keys[-1], ids[-1])


async def _shared_server(work: Callable[[], Awaitable[T]]) -> T:
    """The test's own reads and writes: the PostgreSQL server is shared with other tests, whose
    connections may fill it for a moment ("too many clients"); those are tried again."""
    for _ in range(40):
        try:
            return await work()
        except Exception as exc:
            if not database_down(exc) and "too many clients" not in str(exc):
                raise
            await asyncio.sleep(0.25)
    return await work()


def report(fault: str, **figures: object) -> None:
    """The test's figures, on one line the report quotes."""
    told = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"\nFAULT {fault}: {told}", flush=True)


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f} s" if values else "none"
