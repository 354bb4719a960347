"""Leads whose step keeps failing: parked, never retried in a tight loop, and shown to the owner.

A step that fails for want of the database is the database's trouble: the engine waits for it with a
growing backoff (`dialer.retrying`) and nothing is held against the lead. A step that fails for any other
reason (a bug, a record the rules cannot read) would fail the same way on every try. After `LIMIT` such
failures in a row the lead is parked:

- it ends `failed`, its wake-up cleared, so no engine looks at it again on its own;
- the managers it held are freed (and the site's longest-waiting lead woken for them);
- the reason is its outcome and a line on its timeline (the error's type only: an error's text may carry
  what a statement was given, a phone number);
- the site's owner is told by a dashboard notice (one a day per site, saying how many and the latest);
- its calls still in progress are hung up.

Counting is per engine and in memory: a failure that another engine sees instead only slows the count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer.clock import Clock
from dialer.core.hours import zone
from dialer.core.states import TERMINAL, LeadStatus, LegStatus
from dialer.db.models import CallLeg, Lead, LeadEvent, Manager, Site, SiteNotice, table_of
from dialer.retrying import QuietLog, database_down
from dialer.sites.cache import SiteCache
from dialer.telephony.base import Provider, ProviderError

log = logging.getLogger("ringback.engine")

LIMIT = 5  # failures in a row, not for want of the database, before a lead is parked
NOTICE = "lead_parked"
OUTCOME = "stopped after {n} failed attempts to move it on ({error}): an error in Ringback, see its log"
REMEMBERED = 10_000  # leads whose failures are being counted, at most

_leads, _legs, _managers = table_of(Lead), table_of(CallLeg), table_of(Manager)
_events, _notices, _sites = table_of(LeadEvent), table_of(SiteNotice), table_of(Site)


class Parking:
    def __init__(self, database: AsyncEngine, provider: Provider, clock: Clock, sites: SiteCache,
                 freed: Callable[[int], None]) -> None:
        self.database = database
        self.provider = provider
        self.clock = clock
        self.sites = sites
        self._freed = freed  # managers of this site were freed: its queue is woken
        self._failures: dict[str, int] = {}
        self._quiet = QuietLog(log)
        self._tasks: set[asyncio.Task[None]] = set()
        self.parked: list[str] = []  # leads this engine parked (tests read it)

    def observe(self, outcomes: dict[str, Any]) -> None:
        """After a batch: count each lead's failures in a row (a success ends the count); the leads that
        reached `LIMIT` are parked in the background."""
        for lead_id, outcome in outcomes.items():
            if not isinstance(outcome, BaseException) or database_down(outcome):
                self._failures.pop(lead_id, None)
                continue
            failures = self._failures.pop(lead_id, 0) + 1
            if failures < LIMIT:
                if len(self._failures) >= REMEMBERED:
                    self._failures.clear()
                self._failures[lead_id] = failures
                continue
            task = asyncio.ensure_future(self._park_quietly(lead_id, outcome))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _park_quietly(self, lead_id: str, exc: BaseException) -> None:
        try:
            await self.park(lead_id, type(exc).__name__)
        except Exception as failed:
            # Counted afresh: after LIMIT more failures it is tried again, never in a tight loop.
            self._quiet.error("parking a lead", failed, now=time.monotonic(), detail=lead_id)

    async def park(self, lead_id: str, error: str) -> bool:
        """Take the lead out of the hunt for good (see the module's docstring); False if it was over."""
        now = self.clock.now()
        reason = OUTCOME.format(n=LIMIT, error=error)
        async with self.database.begin() as conn:
            lead = (await conn.execute(
                select(_leads.c.status, _leads.c.site_id).where(_leads.c.id == lead_id).with_for_update()
            )).first()
            if lead is None or lead.status in TERMINAL:
                await conn.execute(update(_leads).where(_leads.c.id == lead_id).values(wake_at=None))
                return False
            await conn.execute(update(_leads).where(_leads.c.id == lead_id).values(
                status=LeadStatus.FAILED.value, outcome=reason, wake_at=None, ended_at=now, updated_at=now,
                version=_leads.c.version + 1,
            ))
            freed = await conn.execute(update(_managers).where(_managers.c.busy_lead_id == lead_id)
                                       .values(busy_lead_id=None))
            await conn.execute(_events.insert().values(lead_id=lead_id, at=now, kind="status",
                                                       status=LeadStatus.FAILED.value, detail=reason))
            await self._tell_owner(conn, lead.site_id, lead_id, now)
            live = (await conn.execute(select(_legs.c.provider_sid).where(
                _legs.c.lead_id == lead_id, _legs.c.provider_sid.is_not(None),
                _legs.c.status != LegStatus.ENDED.value,
            ))).scalars().all()
        log.error("lead %s parked: %s", lead_id, reason)
        self.parked.append(lead_id)
        for sid in live:
            try:
                await self.provider.hangup(sid)
            except ProviderError as exc:
                log.warning("hanging up a parked lead's call failed: %s", exc.reason)
        if freed.rowcount:
            self._freed(lead.site_id)
        return True

    async def _tell_owner(self, conn: AsyncConnection, site_id: int, lead_id: str, now: datetime) -> None:
        """The site's notice of the day: how many leads were parked in the last day, and the latest."""
        site = (await self.sites.configs(conn, {site_id})).get(site_id)
        day = (now.astimezone(zone(site.timezone)) if site is not None else now).date().isoformat()
        count = (await conn.execute(select(func.count()).select_from(_leads).where(
            _leads.c.site_id == site_id, _leads.c.status == LeadStatus.FAILED.value,
            _leads.c.outcome.like(OUTCOME.split("{", 1)[0] + "%"),
            _leads.c.ended_at >= now - timedelta(days=1),
        ))).scalar_one()
        detail = (f"{count} lead(s) in the last day stopped after repeated errors, the latest {lead_id}; "
                  "its timeline and the log say more")
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        query = insert(_notices).values(site_id=site_id, kind=NOTICE, day=day, at=now, detail=detail)
        await conn.execute(query.on_conflict_do_update(
            index_elements=["site_id", "kind", "day"], set_={"detail": detail, "at": now, "seen_at": None},
        ))
