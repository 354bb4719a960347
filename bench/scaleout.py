"""Scale-out: throughput of one engine process against two on one PostgreSQL.

The same work is run twice on an emptied database: N leads due at once, one site and one manager each;
managers never answer (each lead is one call ringing for `--ring` seconds, then `missed`). First one
worker process carries it, then two. Printed for each: leads claimed and dialed per second, and leads
carried to their end per second; the figure is the two-worker rate beside the one-worker rate measured
in the same run.

    .venv/bin/python bench/scaleout.py [--leads 10000] [--ring 5]

The workers are this script in `--worker` mode: the same Runtime and Engine as `ringback worker`, with
the simulator scripted. PostgreSQL at RINGBACK_BENCH_DATABASE_URL (default: the h_scale database).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from bench._world import database_url, empty, open_leads, outcomes, populate, prepare  # noqa: E402
from dialer import db  # noqa: E402
from dialer.broadcast.memory import MemoryBroadcast  # noqa: E402
from dialer.clock import SystemClock  # noqa: E402
from dialer.config import Settings  # noqa: E402
from dialer.core.machine import Policy  # noqa: E402
from dialer.db.models import Lead  # noqa: E402
from dialer.runtime import Runtime  # noqa: E402
from dialer.telephony.simulator import Behaviour, SimulatedProvider  # noqa: E402


async def worker(url: str, leads: int, ring: int) -> None:
    clock = SystemClock(1.0)
    sim = SimulatedProvider(clock, seed=os.getpid())
    for i in range(leads):
        sim.script(f"+1202{5000000 + i:07d}", Behaviour.never_answers())
    runtime = Runtime.build(Settings(database_url=url), clock=clock, provider=sim, broadcast=MemoryBroadcast(),
                            policy=Policy(ring_timeout=ring))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await runtime.start()
    print("ready", flush=True)
    await stop.wait()
    await runtime.close()


async def waiting(engine) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        query = select(func.count()).select_from(Lead).where(Lead.status == "queued")
        return int((await conn.execute(query)).scalar_one())


async def one_round(url: str, workers: int, args: argparse.Namespace) -> tuple[float, float, dict[str, int]]:
    engine = db.create_engine(url)
    await empty(engine, url)
    procs = []
    for _ in range(workers):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--worker", "--leads", str(args.leads), "--ring", str(args.ring),
            env={**os.environ, "RINGBACK_BENCH_DATABASE_URL": url}, stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        while b"ready" not in await asyncio.wait_for(proc.stdout.readline(), 60):
            pass
        procs.append(proc)
    try:
        # The leads appear all at once, already due: the workers find them at their next poll.
        await populate(engine, sites=args.leads, leads=args.leads, now=datetime.now(UTC))
        start = time.monotonic()
        dialed_at = ended_at = None
        while time.monotonic() - start < args.timeout:
            if dialed_at is None and await waiting(engine) == 0:
                dialed_at = time.monotonic() - start
            if await open_leads(engine) == 0:
                ended_at = time.monotonic() - start
                break
            await asyncio.sleep(0.2)  # a benchmark's sampling interval, not synchronisation
        result = await outcomes(engine)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 60)
        await engine.dispose()
    if ended_at is None:
        raise SystemExit(f"{workers} worker(s): not every lead ended within {args.timeout} s: {result}")
    return args.leads / (dialed_at or ended_at), args.leads / ended_at, result


async def run(args: argparse.Namespace, url: str) -> None:
    one = await one_round(url, 1, args)
    two = await one_round(url, 2, args)
    print(f"{args.leads} leads due at once, each ringing {args.ring} s unanswered, PostgreSQL {url.split('@')[-1]}")
    print(f"one worker:  {one[0]:.0f} leads claimed and dialed/s, {one[1]:.0f} leads ended/s {one[2]}")
    print(f"two workers: {two[0]:.0f} leads claimed and dialed/s, {two[1]:.0f} leads ended/s {two[2]}")
    print(f"two against one: {two[0] / one[0]:.2f}x dialed, {two[1] / one[1]:.2f}x ended")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--leads", type=int, default=10_000)
    p.add_argument("--ring", type=int, default=5, help="seconds each call rings before it is given up")
    p.add_argument("--timeout", type=float, default=240.0)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    url = database_url()
    if args.worker:
        asyncio.run(worker(url, args.leads, args.ring))
        return
    prepare(url)
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
