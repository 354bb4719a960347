"""Server time per hop: accepted POST -> first place-call, and telephony event -> next action.

Runs N leads (default 1,000) through the real app and engine on the simulator, on a manual clock so
that ring and talk times cost nothing and only the server's own work is timed. Each hop's figure is
printed beside the reference: one bare database transaction (insert + commit) on the same database,
measured in the same run.

    python bench/hops.py [--leads 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialer import db  # noqa: E402
from dialer.broadcast.memory import MemoryBroadcast  # noqa: E402
from dialer.clock import ManualClock  # noqa: E402
from dialer.config import Settings  # noqa: E402
from dialer.core.abuse_rules import UNGUARDED  # noqa: E402
from dialer.core.events import LegEvent  # noqa: E402
from dialer.runtime import Runtime  # noqa: E402
from dialer.sites.admin import add_manager, add_site  # noqa: E402
from dialer.telephony.base import CallRequest  # noqa: E402
from dialer.telephony.simulator import Behaviour, SimulatedProvider  # noqa: E402
from server.app import create_app  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def run(url: str, leads: int) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    sim = SimulatedProvider(clock, seed=1)
    runtime = Runtime.build(Settings(database_url=url, demo=True), clock=clock, provider=sim,
                            broadcast=MemoryBroadcast(), poll_interval=None)
    async with runtime.sessions() as session, session.begin():
        key = f"bench-{secrets.token_hex(4)}"  # a database used before keeps its sites: never collide
        site = await add_site(session, name="Bench", key=key, any_country=True, now=clock.now())
        # One client sends every request; and 1,000 leads of two simulated minutes each span 33 hours, so
        # visitors are callable around the clock: otherwise leads after 22:00 wait for the morning, and
        # what is timed is the night, not a hop.
        site.settings = {"abuse": UNGUARDED, "calling_window": ["00:00", "24:00"]}
        await add_manager(session, site=site, name="Never", phone="+12025550101")
        await add_manager(session, site=site, name="Takes", phone="+12025550103")
    sim.script("+12025550101", Behaviour.never_answers())
    sim.script("+12025550103", Behaviour.presses_1(after=2.0, talk_for=30))

    marks: dict[str, float] = {}
    first_dial: list[float] = []
    event_to_action: list[float] = []
    real_place, real_event = sim.place_call, runtime.engine.on_provider_event

    async def timed_place(request: CallRequest) -> str | None:
        now = time.perf_counter()
        if "event" in marks:
            event_to_action.append(now - marks.pop("event"))
        elif "accepted" in marks:
            first_dial.append(now - marks.pop("accepted"))
        return await real_place(request)

    async def timed_event(event: LegEvent) -> None:
        marks["event"] = time.perf_counter()
        try:
            await real_event(event)
        finally:
            marks.pop("event", None)

    sim.place_call = timed_place  # type: ignore[method-assign]
    app = create_app(runtime=runtime)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://bench") as client:
        await runtime.engine.start()
        sim.attach(timed_event)
        for i in range(leads):
            response = await client.post("/api/v1/callbacks", json={
                "site": key, "phone": f"+4850{i:07d}", "timezone": "Europe/Warsaw"})
            assert response.status_code == 201, response.text
            marks["accepted"] = time.perf_counter()
            await clock.advance(0)
            await clock.advance(120)  # the whole hunt and a short talk, in simulated time
        reference = []
        async with runtime.database.connect() as conn:
            for _ in range(leads):
                t0 = time.perf_counter()
                await conn.execute(text("INSERT INTO lead_events (lead_id, at, kind, detail) "
                                        "SELECT id, :at, 'bench', '' FROM leads LIMIT 1"), {"at": clock.now()})
                await conn.commit()
                reference.append(time.perf_counter() - t0)
    await runtime.close()

    name = "PostgreSQL" if "postgresql" in url else "SQLite"
    print(f"\nhops on {name}, {leads} leads ({len(event_to_action)} event->action hops)")
    print(f"  {'':32} {'p50 ms':>8} {'p99 ms':>8}")
    for label, values in (("accepted POST -> first dial", first_dial),
                          ("leg event -> next action", event_to_action),
                          ("reference: one insert+commit", reference)):
        print(f"  {label:32} {pct(values, 50):8.2f} {pct(values, 99):8.2f}")
    ratio = statistics.median(first_dial) / statistics.median(reference)
    print(f"  first dial costs {ratio:.1f} bare transactions (p50)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--database-url", action="append")
    args = parser.parse_args()
    urls = args.database_url
    if not urls:
        tmp = Path(tempfile.mkdtemp()) / "hops.db"
        urls = [f"sqlite+aiosqlite:///{tmp}"]
    for url in urls:
        db.migrate(url)
        asyncio.run(run(url, args.leads))


if __name__ == "__main__":
    main()
