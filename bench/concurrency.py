"""10,000 leads in flight at once in one engine process, on the simulator.

Every lead wakes at its own moment within a window (`--spread`); its manager's phone then rings until the
ring timeout (managers never answer here: the least work per lead that still keeps a call in flight), and
the lead ends `missed`. Printed: how many leads reached a terminal state, the most calls ringing at once,
peak memory, and how late the engine acted on each wake-up (p50/p99; goal p99 under 250 ms), beside the
lateness of a bare asyncio timer measured in the same process just before (the floor on this machine now).

    .venv/bin/python bench/concurrency.py [--leads 10000] [--spread 60] [--ring 60]

PostgreSQL at RINGBACK_BENCH_DATABASE_URL (default: the h_scale database on 127.0.0.1); its tables are
emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._world import database_url, empty, open_leads, outcomes, percentile, populate, prepare  # noqa: E402
from dialer.broadcast.memory import MemoryBroadcast  # noqa: E402
from dialer.clock import SystemClock  # noqa: E402
from dialer.config import Settings  # noqa: E402
from dialer.core.machine import Policy  # noqa: E402
from dialer.runtime import Runtime  # noqa: E402
from dialer.telephony.simulator import Behaviour, SimulatedProvider  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timer_floor(count: int = 500) -> list[float]:
    """Lateness of bare asyncio timers on an idle loop: what this machine gives anyone right now."""
    loop = asyncio.get_running_loop()
    late: list[float] = []
    done = asyncio.Event()
    start = loop.time()
    for i in range(count):
        due = start + 0.002 * i

        def fire(due: float = due) -> None:
            late.append(loop.time() - due)
            if len(late) == count:
                done.set()

        loop.call_at(due, fire)
    await done.wait()
    return late


async def run(args: argparse.Namespace, url: str) -> None:
    floor = await timer_floor()
    clock = SystemClock(1.0)
    sim = SimulatedProvider(clock, seed=1)
    policy = Policy(ring_timeout=args.ring)
    runtime = Runtime.build(Settings(database_url=url), clock=clock, provider=sim, broadcast=MemoryBroadcast(),
                            policy=policy, poll_interval=1.0)
    late: list[float] = []
    seen: list[tuple[float, float]] = []  # (seconds since the start, lateness): for --series

    def on_wake(lateness: float) -> None:
        late.append(lateness)
        seen.append((time.monotonic() - started, lateness))

    runtime.engine.on_wake = on_wake
    await empty(runtime.database, url)
    for i in range(args.leads):
        sim.script(f"+1202{5000000 + i:07d}", Behaviour.never_answers())
    # The first lead falls due `--warmup` seconds from now: writing them all takes a while, and a lead
    # due before the engine even started would count as late.
    first_due = clock.now() + timedelta(seconds=args.warmup)
    await populate(runtime.database, sites=args.leads, leads=args.leads, now=clock.now(), first_due=first_due,
                   spread=args.spread)
    if clock.now() >= first_due:
        print(f"warning: writing the leads took longer than --warmup {args.warmup} s; the first are late already")
    before = rss_mb()
    gc.collect()
    gc.freeze()  # what `ringback worker` does once started: the setup's objects are never scanned again
    started = time.monotonic()
    await runtime.start()
    peak_calls, left = 0, args.leads
    deadline = started + args.timeout
    while time.monotonic() < deadline:
        peak_calls = max(peak_calls, len(sim.active_calls()))
        left = await open_leads(runtime.database)
        if left == 0:
            break
        await asyncio.sleep(0.5)  # a benchmark's sampling interval, not synchronisation
    took = time.monotonic() - started
    ended = await outcomes(runtime.database)
    await runtime.close()
    ms = [1000 * s for s in late]
    floor_ms = [1000 * s for s in floor]
    print(f"leads: {args.leads} due over {args.spread:.0f} s, each ringing {args.ring} s; engine: "
          f"{runtime.engine.hands} batches at once, {runtime.engine.concurrency} connections")
    print(f"terminal: {args.leads - left}/{args.leads} in {took:.1f} s {ended}")
    print(f"calls ringing at once (peak): {peak_calls}")
    print(f"memory: {before:.0f} MB before the engine started, peak RSS {peak_rss_mb():.0f} MB")
    print(f"wake-up lateness: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
          f"max {max(ms, default=float('nan')):.0f} ms over {len(ms)} wake-ups (goal: p99 < 250 ms)")
    print(f"reference, a bare asyncio timer now: p50 {percentile(floor_ms, 0.5):.2f} ms, "
          f"p99 {percentile(floor_ms, 0.99):.2f} ms")
    if args.series:
        for start in range(0, int(took) + 1, 5):
            window = [1000 * lateness for at, lateness in seen if start <= at < start + 5]
            if window:
                print(f"  {start:4d}-{start + 5:<4d} s: {len(window):5d} wake-ups, p50 {percentile(window, 0.5):7.1f} ms, "
                      f"p99 {percentile(window, 0.99):7.1f} ms, max {max(window):7.1f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--leads", type=int, default=10_000)
    p.add_argument("--spread", type=float, default=60.0, help="seconds over which the leads fall due")
    p.add_argument("--ring", type=int, default=60, help="ring timeout: how long each call stays in flight")
    p.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    p.add_argument("--series", action="store_true", help="lateness per 5 seconds of the run")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds from the start to the first lead's wake-up")
    args = p.parse_args()
    url = database_url()
    prepare(url)
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
