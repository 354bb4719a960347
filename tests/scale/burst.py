"""A burst of leads for two engines on one PostgreSQL, measured as the people involved would notice it:
how long until every lead is over, how long managers sat free while a lead of their site waited, whether
anybody's leg was dialed twice, and whether a provider report got lost on the way in.

Used by the load test (tests/scale/test_burst.py) and the benchmark (bench/burst.py). Two runtimes in one
process stand for two worker processes: each has its own pool, engine and simulated network; they share
one clock and one dial log (`RINGBACK_SIMULATOR_LOG`'s file), as two workers share real time and a real
provider's call log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from dialer import db
from dialer.broadcast.memory import MemoryBroadcast
from dialer.clock import SystemClock
from dialer.config import Settings
from dialer.core.abuse_rules import UNGUARDED
from dialer.core.events import LegEvent
from dialer.core.records import attempt_of
from dialer.core.states import TERMINAL, LeadStatus
from dialer.db.models import CallLeg, Lead, Manager, Site
from dialer.intake.accept import hash_token
from dialer.runtime import Runtime
from dialer.telephony.simulator import Behaviour, SimulatedProvider

SAMPLE_EVERY = 0.05  # real seconds between looks at who is free and who waits


class CountingSimulator(SimulatedProvider):
    """The simulated network, counting every report it makes and each one the engine did not take
    (its webhook answered with an error: a real provider would not send it again)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reported = 0
        self.lost: list[tuple[LegEvent, str]] = []

    async def _emit(self, event: LegEvent, *, callback: bool = False) -> None:
        self.reported += 1
        try:
            await super()._emit(event, callback=callback)
        except Exception as exc:  # noqa: BLE001 - what the engine answered; counted, not raised
            self.lost.append((event, repr(exc)))


@dataclass
class Burst:
    leads: int = 300
    sites: int = 3
    managers_per_site: int = 10
    speed: float = 10.0  # simulated seconds per real second
    engines: int = 2
    deadline: float = 120.0  # real seconds
    talk: float = 20.0  # simulated seconds each conversation lasts
    poll_interval: float | None = 5.0  # simulated seconds


@dataclass
class Figures:
    burst: Burst
    drained: float | None  # real seconds until every lead was over (None: not within the deadline)
    idle_seconds: float  # manager-seconds (real) a manager sat free while a lead of its site could take them
    longest_idle: float  # the longest such stretch of one manager (real seconds)
    idle_worst: tuple[int, float] | None  # (manager id, when it began, real seconds from the start)
    looks_at_rest: int  # looks taken while every engine was at rest
    forgotten: list[tuple[float, int, str]]  # at rest, a manager idle beside a lead waiting in the queue
    dialed_twice: list[str]
    reported: int
    lost: list[tuple[LegEvent, str]]
    statuses: Counter[str]
    errors: Counter[str] = field(default_factory=Counter)  # error lines the engines logged, by first words

    @property
    def ideal(self) -> float:
        """The drain time of a perfect engine (real seconds): rounds of calls, each as long as the
        simulator makes one (ring, answer and press 1, the visitor's ring and answer, the talk)."""
        rounds = -(-self.burst.leads // (self.burst.sites * self.burst.managers_per_site))
        return rounds * (1 + 2 + 2 + 1 + 2 + self.burst.talk) / self.burst.speed

    def lines(self) -> list[str]:
        b = self.burst
        drained = f"{self.drained:.1f} s" if self.drained is not None else f"not within {b.deadline:.0f} s"
        return [
            f"{b.leads} leads for {b.sites * b.managers_per_site} managers ({b.sites} sites), {b.engines} engines, "
            f"simulator x{b.speed:g}",
            f"drained in {drained} (a perfect engine: {self.ideal:.1f} s); outcomes {dict(self.statuses)}",
            f"idle managers while a lead of their site waited: {self.idle_seconds:.1f} manager-seconds in all, "
            f"longest {self.longest_idle:.2f} s"
            + (f" (from {self.idle_worst[1]:.1f} s into the burst)" if self.idle_worst else ""),
            f"looks with every engine at rest: {self.looks_at_rest}, finding a manager forgotten beside a "
            f"queued lead: {len(self.forgotten)}",
            f"legs dialed twice: {len(self.dialed_twice)}; provider reports lost: {len(self.lost)} of {self.reported}",
            f"errors logged: {dict(self.errors) or 'none'}",
        ]


MANAGER_BEHAVIOUR = Behaviour.presses_1(after=2.0)


def _manager_phone(i: int) -> str:
    return f"+1202555{i:04d}"


def _visitor_phone(i: int) -> str:
    return f"+4850{1000000 + i:07d}"


async def seed(database: Any, burst: Burst, now: datetime, *, sites: bool = True, leads: bool = True) -> None:
    """The sites and their managers (any hour is a calling hour), then every lead at once, all due now:
    a burst as the intake writes it."""
    if sites:
        await db.empty_tables(database)
        async with database.begin() as conn:
            await _sites(conn, burst, now)
    if leads:
        async with database.begin() as conn:
            await _leads(conn, burst, now)


async def _sites(conn: Any, burst: Burst, now: datetime) -> None:
    await conn.execute(insert(Site), [
        dict(key=f"burst{s}", name=f"Burst {s}", timezone="UTC", country="US", any_country=True, origins=[],
             settings={"abuse": UNGUARDED, "calling_window": ["00:00", "24:00"]}, created_at=now)
        for s in range(burst.sites)
    ])
    site_ids = list((await conn.execute(select(Site.id).order_by(Site.id))).scalars())
    await conn.execute(insert(Manager), [
        dict(site_id=site_id, name=f"M{s}.{m}", phone=_manager_phone(s * burst.managers_per_site + m),
             position=m, active=True)
        for s, site_id in enumerate(site_ids) for m in range(burst.managers_per_site)
    ])


async def _leads(conn: Any, burst: Burst, now: datetime) -> None:
    site_ids = list((await conn.execute(select(Site.id).order_by(Site.id))).scalars())
    token = hash_token(secrets.token_urlsafe(8))
    await conn.execute(insert(Lead), [
        dict(id=secrets.token_hex(16), site_id=site_ids[i % burst.sites], kind="call", status=LeadStatus.QUEUED,
             version=1, token_hash=token, phone=_visitor_phone(i), timezone="UTC", wake_at=now, attempt=1,
             utm={}, source={}, created_at=now, updated_at=now)
        for i in range(burst.leads)
    ])


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR or "QueuePool" in message:
            where = message.split(" failed")[0][:40]
            kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
            if "QueuePool" in message or (record.exc_info and "QueuePool" in str(record.exc_info[1])):
                kind = "QueuePool limit reached"
            elif record.exc_info and "deadlock" in str(record.exc_info[1]).lower():
                kind = "deadlock"
            self.seen[f"{where}: {kind}" if kind else where] += 1


@contextlib.contextmanager
def _errors_logged() -> Iterator[_Errors]:
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


class IdleWatch:
    """Looks at the database every SAMPLE_EVERY seconds: a manager counts as idle while they are active,
    free, and some queued lead of their site has not rung them in its current attempt.

    Besides the stretches of wall-clock time (which a busy machine stretches too), it counts the looks
    taken while every engine was at rest (nothing in hand, before and after the look, and nothing started
    in between) that found a manager idle beside a lead waiting in the queue (not one just due: the
    tick's): a manager whom no engine was about to give a lead. There must be none."""

    def __init__(self, runtimes: list[Runtime]) -> None:
        self.runtimes = runtimes
        self.idle_since: dict[int, float] = {}
        self.total = 0.0
        self.longest = 0.0
        self.worst: tuple[int, float] | None = None
        self.looks_at_rest = 0
        self.forgotten: list[tuple[float, int, str]] = []  # (seconds in, manager id, lead id) seen at rest

    def _state(self) -> tuple[bool, tuple[int, ...]]:
        engines = [r.engine for r in self.runtimes]
        return all(e.at_rest for e in engines), tuple(e.batches for e in engines)

    async def look(self, watcher: Any, at: float, started: float, now: datetime) -> None:
        rest_before, batches_before = self._state()
        async with watcher.connect() as conn:
            await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            managers = (await conn.execute(
                select(Manager.id, Manager.site_id, Manager.active, Manager.busy_lead_id))).all()
            queued = (await conn.execute(
                select(Lead.id, Lead.site_id, Lead.attempt, Lead.wake_at).where(Lead.status == LeadStatus.QUEUED)
            )).all()
            tried: dict[str, set[int]] = {}
            if queued:
                attempt = {row.id: row.attempt for row in queued}
                rows = await conn.execute(
                    select(CallLeg.lead_id, CallLeg.manager_id, CallLeg.step)
                    .where(CallLeg.lead_id.in_(list(attempt)), CallLeg.manager_id.is_not(None))
                )
                for row in rows:
                    if attempt_of(row.step) == attempt[row.lead_id]:
                        tried.setdefault(row.lead_id, set()).add(row.manager_id)
            await conn.rollback()
        rest_after, batches_after = self._state()
        at_rest = rest_before and rest_after and batches_before == batches_after
        self.looks_at_rest += at_rest
        waiting: dict[int, list[tuple[str, bool, set[int]]]] = {}
        for row in queued:
            in_queue = row.wake_at is None or row.wake_at > now
            waiting.setdefault(row.site_id, []).append((row.id, in_queue, tried.get(row.id, set())))
        for m in managers:
            takers = [(lead_id, in_queue) for lead_id, in_queue, t in waiting.get(m.site_id, []) if m.id not in t]
            idle = m.active and m.busy_lead_id is None and bool(takers)
            if idle:
                self.idle_since.setdefault(m.id, at)
                forgotten = [lead_id for lead_id, in_queue in takers if in_queue]
                if at_rest and forgotten:
                    self.forgotten.append((at - started, m.id, forgotten[0]))
            elif m.id in self.idle_since:
                self._close(m.id, at, started)

    def _close(self, manager_id: int, at: float, started: float) -> None:
        since = self.idle_since.pop(manager_id)
        stretch = at - since
        self.total += stretch
        if stretch > self.longest:
            self.longest, self.worst = stretch, (manager_id, since - started)

    def finish(self, at: float, started: float) -> None:
        for manager_id in list(self.idle_since):
            self._close(manager_id, at, started)


async def run(url: str, burst: Burst, workdir: Path) -> Figures:
    """Seed, start the engines, watch until every lead is over (or the deadline), stop; the figures."""
    clock = SystemClock(burst.speed)
    dial_log = workdir / f"dials-{secrets.token_hex(4)}.jsonl"
    runtimes: list[Runtime] = []
    sims: list[CountingSimulator] = []
    for i in range(burst.engines):
        sim = CountingSimulator(clock, seed=i, log_path=str(dial_log))
        for m in range(burst.sites * burst.managers_per_site):
            sim.script(_manager_phone(m), MANAGER_BEHAVIOUR)
        for v in range(burst.leads):
            sim.script(_visitor_phone(v), Behaviour.answers(after=2.0, talk_for=burst.talk))
        sims.append(sim)
        runtimes.append(Runtime.build(Settings(database_url=url), clock=clock, provider=sim,
                                      broadcast=MemoryBroadcast(), poll_interval=burst.poll_interval))
    watcher = db.create_engine(url)
    watch = IdleWatch(runtimes)
    with _errors_logged() as errors:
        try:
            await seed(watcher, burst, clock.now(), leads=False)
            for runtime in runtimes:
                await runtime.start()
            # The burst arrives at running engines, as the intake would announce it.
            await seed(watcher, burst, clock.now(), sites=False)
            started = time.monotonic()
            for runtime in runtimes:
                runtime.engine.nudge()
            drained = None
            while time.monotonic() - started < burst.deadline:
                await watch.look(watcher, time.monotonic(), started, clock.now())
                async with watcher.connect() as conn:
                    left = (await conn.execute(
                        select(Lead.id).where(Lead.status.not_in([s.value for s in TERMINAL])).limit(1)
                    )).first()
                if left is None:
                    drained = time.monotonic() - started
                    break
                await asyncio.sleep(SAMPLE_EVERY)  # a sampling interval, not synchronisation
            watch.finish(time.monotonic(), started)
        finally:
            for runtime in runtimes:
                await runtime.close()
        async with watcher.connect() as conn:
            statuses = Counter({s: n for s, n in (await conn.execute(
                select(Lead.status, func.count()).group_by(Lead.status))).all()})
        await watcher.dispose()
    dials = [json.loads(line) for line in dial_log.read_text().splitlines()] if dial_log.exists() else []
    per_leg = Counter(str(d["leg_id"]) for d in dials)
    return Figures(
        burst, drained, watch.total, watch.longest, watch.worst, watch.looks_at_rest, watch.forgotten,
        dialed_twice=[leg for leg, n in per_leg.items() if n > 1],
        reported=sum(s.reported for s in sims), lost=[x for s in sims for x in s.lost],
        statuses=statuses, errors=errors.seen,
    )

