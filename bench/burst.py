"""A burst: a few hundred leads, all due at once, for tens of managers, carried by two engines on one
PostgreSQL with the simulator sped up (every manager presses 1, every visitor answers and talks).

Printed: how long until every lead was over, beside what a perfect engine would take (the calls' own
length, round after round); manager-seconds spent free while a lead of the site could have taken them;
legs dialed twice (the shared dial log); provider reports the engines did not take.

    .venv/bin/python bench/burst.py [--leads 300] [--sites 3] [--managers 10] [--speed 10]
    .venv/bin/python bench/burst.py --leads 2000 --sites 20 --managers 10   # the issue's 2,000 for 200

PostgreSQL at RINGBACK_BENCH_DATABASE_URL (default: the h_scale database); its tables are emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._world import database_url, prepare  # noqa: E402
from tests.scale.burst import Burst, run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--leads", type=int, default=300)
    p.add_argument("--sites", type=int, default=3)
    p.add_argument("--managers", type=int, default=10, help="managers per site")
    p.add_argument("--speed", type=float, default=10.0, help="simulated seconds per real second")
    p.add_argument("--engines", type=int, default=2)
    p.add_argument("--talk", type=float, default=20.0, help="simulated seconds of each conversation")
    p.add_argument("--deadline", type=float, default=240.0, help="real seconds before giving up")
    args = p.parse_args()
    url = database_url()
    prepare(url)
    burst = Burst(leads=args.leads, sites=args.sites, managers_per_site=args.managers, speed=args.speed,
                  engines=args.engines, deadline=args.deadline, talk=args.talk)
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(url, burst, Path(tmp)))
    for line in figures.lines():
        print(line)


if __name__ == "__main__":
    main()
