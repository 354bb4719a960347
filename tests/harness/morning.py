"""A busy morning for the pacing tests (on the Twilio stand-in and on the simulator): `count` scheduled
callbacks on sites of three managers each, all due at one moment, with every lead able to take a free
manager at once. Only the people at the numbers differ between the two worlds; the caller scripts them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert

from dialer.db.models import Lead
from dialer.sites.admin import add_manager, add_site
from tests.harness.world import relaxed_abuse

MANAGERS_PER_SITE = 3


def manager_phone(site: int, n: int) -> str:
    return f"+1202556{site:02d}{n:02d}"


@dataclass(frozen=True)
class Morning:
    due: datetime
    lead_ids: list[str]
    visitors: list[str]  # the leads' phones, in lead order
    managers: list[str]  # every manager's phone


async def due_together(sessions: Any, now: datetime, count: int, caller_id: str) -> Morning:
    """Write the sites, managers and `count` leads (three per site), due two seconds after `now`."""
    due = now + timedelta(seconds=2)
    sites, managers = [], []
    async with sessions() as session, session.begin():
        for i in range(count // MANAGERS_PER_SITE):
            site = await add_site(session, name=f"Shop {i}", key=f"pace{i}", timezone="Europe/Warsaw", country="PL",
                                  caller_id=caller_id, any_country=True, now=now)
            site.settings = {"calling_window": ["00:00", "24:00"], **relaxed_abuse()}
            for n in range(MANAGERS_PER_SITE):
                await add_manager(session, site=site, name=f"M{n + 1}", phone=manager_phone(i, n))
                managers.append(manager_phone(i, n))
            sites.append(site)
        await session.flush()
        rows = [
            dict(id=f"lead{k:04d}", site_id=sites[k % len(sites)].id, kind="call", status="scheduled", version=0,
                 token_hash="0" * 64, phone=f"+485012{k:05d}", timezone="Europe/Warsaw", scheduled_for=due,
                 wake_at=due, attempt=1, confirmed_at=now, created_at=now, updated_at=now, source={}, utm={})
            for k in range(count)
        ]
        await session.execute(insert(Lead), rows)
    return Morning(due, [str(r["id"]) for r in rows], [str(r["phone"]) for r in rows], managers)
