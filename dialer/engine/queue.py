"""Waking a site's queue: when a manager of a site may have become free (their leg ended, a safety poll
found one free), the site's queued leads that can take a free manager are stepped at once, oldest first.

The waker reads the site's managers and queue without locks (`store.queue`), guesses who can take whom
(`dialer/core/queue_order.py`), and hands those leads to the engine in queue order, all together, so that
one transaction steps them in that order: each takes a manager the one before left (the records of the
site's managers are shared within a step). The state machine decides for real; a wrong guess only costs a
step that changes nothing. Rounds repeat while they move someone (a lead took a manager: others may be
left), and a site freed again meanwhile is looked at once more after the round. Queued leads have no
wake-up of their own (but a manager coming on duty), so nothing is rewritten while they wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer.clock import Clock
from dialer.core import windows
from dialer.core.machine import Trigger
from dialer.core.queue_order import can_take
from dialer.engine import store
from dialer.engine.inbox import Work
from dialer.retrying import QuietLog

log = logging.getLogger("ringback.engine")

PAGE = 200  # queued leads of one site looked at in one round (free managers are fewer, by far)

Enqueue = Callable[[list[tuple[str, Work]]], list[Work]]
Sites = Callable[[AsyncConnection, set[int]], Awaitable[dict[int, store.SiteRow]]]


class QueueWaker:
    def __init__(self, database: AsyncEngine, slots: asyncio.Semaphore, clock: Clock, ring: float, sites: Sites,
                 enqueue: Enqueue) -> None:
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self._slots = slots
        self.clock = clock
        self.ring = ring
        self._sites = sites
        self._enqueue = enqueue
        self._dirty: set[int] = set()
        self._rounds = False  # a loop of rounds is under way
        self._runs: set[asyncio.Future[None]] = set()
        self._quiet = QuietLog(log)

    @property
    def at_rest(self) -> bool:
        return not self._rounds

    def wake(self, site_ids: Iterable[int]) -> None:
        """Look at these sites' queues now (or right after the round under way)."""
        self._dirty.update(site_ids)
        if self._dirty and not self._rounds:
            self._rounds = True
            self.clock.call_later(0, self._run)  # a timer: a test's manual clock runs it, and awaits it

    async def wait(self) -> None:
        """Until no round is under way (an engine stopping)."""
        while self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)

    async def _run(self) -> None:
        me = asyncio.get_running_loop().create_future()
        self._runs.add(me)
        done: list[asyncio.Future[object]] = []
        try:
            while self._dirty:
                sites, self._dirty = self._dirty, set()
                try:
                    woken = await self._round(sites)
                except Exception as exc:  # the database away: the safety poll finds these sites again
                    self._quiet.error("waking a queue", exc, now=time.monotonic())
                    break
                done.extend(work.done for _, work in woken)
                moved = await asyncio.gather(*(work.committed for _, work in woken), return_exceptions=True)
                # Someone took a manager (or left the queue): others may take those still free.
                self._dirty.update(site for (site, _), took in zip(woken, moved, strict=True) if took is True)
        finally:
            self._rounds = False
            # The round's steps are committed; their calls are placed before this timer is over.
            await asyncio.gather(*done, return_exceptions=True)
            me.set_result(None)
            self._runs.discard(me)

    async def _round(self, site_ids: set[int]) -> list[tuple[int, Work]]:
        now = self.clock.now()
        picked: list[tuple[int, str]] = []
        async with self._slots, self.autocommit.connect() as conn:
            configs = await self._sites(conn, site_ids)
            for site_id in sorted(configs):
                site = configs[site_id]
                active = [m for m in await store.site_managers(conn, site_id) if m.active]
                duty = windows.on_duty(now, site, active, self.ring)
                free = [m.id for m in active if m.busy_lead_id is None and duty.get(m.id, True)]
                if not free:
                    continue
                waiting = await store.queue(conn, site_id, PAGE)
                for lead_id in can_take(free, waiting, simultaneous=site.routing == "simultaneous"):
                    picked.append((site_id, lead_id))
        works = self._enqueue([(lead_id, Work(Trigger.QUEUE)) for _, lead_id in picked])
        return [(site_id, work) for (site_id, _), work in zip(picked, works, strict=True)]
