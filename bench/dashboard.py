"""How long the dashboard takes to render its heaviest pages with 100,000 leads in the database.

Seeds N leads (default 100,000) over the last 90 days, with about three call legs each (answered and
priced, rung and unanswered, some still without a price), then times, through the real app and a
signed-in owner, the leads list (first page and a deep page) and the cost page (7 and 30 days), on SQLite
and on PostgreSQL. Each figure is printed beside two references measured in the same run: the same
client asking for /healthz, and a bare `SELECT count(*)` over the leads table.

    .venv/bin/python bench/dashboard.py [--leads 100000] [--only sqlite|postgresql]
        [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/h_dash]

The PostgreSQL database given is emptied and re-created (use a scratch one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from dialer import db  # noqa: E402
from dialer.accounts.users import add_user  # noqa: E402
from dialer.config import Settings  # noqa: E402
from dialer.db.models import Base, CallLeg, Lead, Manager  # noqa: E402
from dialer.runtime import Runtime  # noqa: E402
from dialer.sites.admin import add_manager, add_site  # noqa: E402
from server.app import create_app  # noqa: E402

PASSWORD = "bench password 123"
SOURCES = [("Google Ads", {"source": "google", "medium": "cpc"}), ("Google search", {}), ("direct", {}),
           ("Facebook", {"source": "facebook", "medium": "paid_social"}), ("Bing search", {}),
           ("newsletter", {"source": "newsletter", "medium": "email"})]
CAMPAIGNS = [None, "winter", "summer-sale", "brand", "boots", "retarget", "spring", "black-friday"]
PAGES = [f"https://shop.example/{p}" for p in ("", "boots", "coats", "sale", "contact", "about", "hats",
                                                 "gloves", "scarves", "bags", "shoes", "jackets")]
PREFIXES = ["+4850", "+4860", "+4822", "+1202555", "+1415555", "+44207", "+44161", "+4930", "+4989", "+3314"]
STATUSES = ["completed"] * 6 + ["missed", "unreachable", "cancelled", "failed"]
RUNS = 7


def _phone(rng: random.Random) -> str:
    prefix = rng.choice(PREFIXES)
    digits = 12 - len(prefix) + (1 if prefix.startswith("+1") else 0)
    return prefix + "".join(rng.choice("0123456789") for _ in range(max(4, digits)))


def _rows(n: int, site_id: int, managers: list[int], now: datetime, seed: int = 1) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    leads, legs = [], []
    for i in range(n):
        created = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        label, utm = rng.choice(SOURCES)
        campaign = rng.choice(CAMPAIGNS)
        status = rng.choice(STATUSES)
        lead_id = f"{i:032x}"
        leads.append(dict(
            id=lead_id, site_id=site_id, kind="call", status=status, version=1, token_hash="0" * 64,
            phone=_phone(rng), timezone="Europe/Warsaw", attempt=1, consent=False,
            page_url=rng.choice(PAGES), utm={**utm, **({"campaign": campaign} if campaign else {})},
            source={"label": label, "returning": rng.random() < 0.1}, created_at=created, updated_at=created,
        ))
        at = created
        for step, manager in enumerate(managers[:2] if status == "completed" else managers):
            accepted = status == "completed" and step == 1
            answered = accepted or rng.random() < 0.2
            talk = rng.randint(30, 400) if accepted else (rng.randint(5, 25) if answered else None)
            price = None if rng.random() < 0.03 else Decimal("0.014") * (-(-(talk or 0) // 60))
            legs.append(_leg(lead_id, f"a1:m{manager}", "manager", manager, at, answered, talk, price, accepted))
            at += timedelta(seconds=25)
        if status == "completed":
            talk = rng.randint(20, 380)
            price = None if rng.random() < 0.03 else Decimal("0.035") * (-(-talk // 60))
            legs.append(_leg(lead_id, "a1:v", "visitor", None, at, True, talk, price, False))
    return leads, legs


def _leg(lead_id: str, step: str, role: str, manager: int | None, at: datetime, answered: bool,
         talk: int | None, price: Decimal | None, accepted: bool) -> dict[str, Any]:
    answered_at = at + timedelta(seconds=4) if answered else None
    return dict(
        id=uuid.uuid4().hex, lead_id=lead_id, step=step, role=role, manager_id=manager,
        to_number="+12025550101", status="ended", end_reason="completed" if answered else "no_answer",
        accepted=accepted, created_at=at, answered_at=answered_at,
        ended_at=(answered_at or at) + timedelta(seconds=talk or 20), duration=talk if answered else None,
        price=price, price_unit="USD" if price is not None else None,
    )


async def _reset_postgres(url: str) -> None:
    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {tables}, alembic_version CASCADE"))
    await engine.dispose()


async def seed(url: str, n: int) -> None:
    engine = db.create_engine(url)
    sessions = db.sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        site = await add_site(session, name="Bench shop", key="bench", timezone="Europe/Warsaw", country="PL",
                              any_country=True, now=now)
        for i, phone in enumerate(("+12025550101", "+12025550102", "+12025550103")):
            await add_manager(session, site=site, name=f"Manager {i + 1}", phone=phone)
        await add_user(session, email="owner@bench.example", password=PASSWORD, role="owner", now=now)
        managers = list((await session.execute(select(Manager.id).order_by(Manager.position))).scalars())
        site_id = site.id
    leads, legs = _rows(n, site_id, managers, now)
    for table, rows in ((Lead.__table__, leads), (CallLeg.__table__, legs)):
        for start in range(0, len(rows), 5000):
            async with engine.begin() as conn:
                await conn.execute(insert(table), rows[start:start + 5000])
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    await engine.dispose()
    print(f"  seeded {len(leads):,} leads and {len(legs):,} call legs")


def _time(fn: Callable[[], Any], runs: int = RUNS) -> tuple[float, float]:
    fn()  # warm: templates compiled, connections open, caches filled
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        took.append(time.perf_counter() - start)
    return statistics.median(took), min(took)


def measure(url: str) -> list[tuple[str, float, float]]:
    runtime = Runtime.build(Settings(database_url=url, secret_key="bench-" + os.urandom(8).hex()))
    app = create_app(runtime=runtime, run_engine=False)
    results = []
    with TestClient(app) as client:
        login = client.get("/dashboard/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', login)
        assert csrf
        client.post("/dashboard/login", data={"email": "owner@bench.example", "password": PASSWORD,
                                              "csrf": csrf.group(1)})

        def get(path: str) -> Callable[[], None]:
            def go() -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
            return go

        async def count() -> int:
            async with runtime.sessions() as session:
                return int((await session.execute(text("SELECT count(*) FROM leads"))).scalar_one())

        def bare_count() -> None:
            client.portal.call(count)  # type: ignore[union-attr]

        results.append(("reference: GET /healthz", *_time(get("/healthz"))))
        results.append(("reference: SELECT count(*) FROM leads", *_time(bare_count)))
        results.append(("leads list, first page", *_time(get("/dashboard/leads"))))
        results.append(("leads list, page 1000", *_time(get("/dashboard/leads?page=1000"))))
        results.append(("leads list, filtered by campaign", *_time(get("/dashboard/leads?campaign=winter"))))
        results.append(("cost page, last 7 days", *_time(get("/dashboard/costs?period=7d"))))
        results.append(("cost page, last 30 days", *_time(get("/dashboard/costs?period=30d"))))
        results.append(("live board", *_time(get("/dashboard/"))))
        client.portal.call(runtime.database.dispose)  # type: ignore[union-attr]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=os.environ.get(
        "RINGBACK_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/h_dash"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"sqlite": f"sqlite+aiosqlite:///{tmp}/bench.db", "postgresql": args.postgres}
        for name, url in targets.items():
            if args.only and name != args.only:
                continue
            print(f"\n{name}: {args.leads:,} leads")
            if name == "postgresql":
                asyncio.run(_reset_postgres(url))
            db.migrate(url)
            started = time.perf_counter()
            asyncio.run(seed(url, args.leads))
            print(f"  (seeding took {time.perf_counter() - started:.0f} s)")
            print(f"  {'what':<40} {'median':>10} {'best':>10}   (of {RUNS} runs, after one warm-up)")
            for label, median, best in measure(url):
                print(f"  {label:<40} {median * 1000:>8.1f} ms {best * 1000:>7.1f} ms", flush=True)


if __name__ == "__main__":
    main()
