"""The engine's inbox: what is to be done to each lead, handed out in batches of distinct leads.

A lead is never in two batches at once, and its work is done in the order it arrived. Under light load a
batch holds one lead and starts at once; when work arrives faster than it is done, it piles up here and
the next free hand takes many leads in one transaction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialer.core.events import LegEvent
from dialer.core.machine import Trigger


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@dataclass
class Work:
    trigger: Trigger
    event: LegEvent | None = None
    prefer: int | None = None  # call back now: ring this manager first
    when: datetime | None = None  # reschedule: the visitor's new time
    held_id: int | None = None  # a provider report held for later (`held.py`): its row, deleted when applied
    # Resolved once the step is committed (True), found nothing to do (False) or failed (None)...
    committed: asyncio.Future[Any] = field(default_factory=_future)
    # ...and with the lead as it stands once the step is also acted on (None: nothing to do).
    done: asyncio.Future[Any] = field(default_factory=_future)

    @property
    def skip_locked(self) -> bool:
        """A due or queued lead another engine is stepping right now is theirs; anything else waits for
        its turn."""
        return self.trigger in (Trigger.WAKE, Trigger.QUEUE)


class Inbox:
    def __init__(self) -> None:
        self._pending: dict[str, deque[Work]] = {}
        self._ready: deque[str] = deque()  # leads with work, not in a batch now
        self._busy: set[str] = set()

    def __len__(self) -> int:
        return len(self._ready)

    def put(self, lead_id: str, work: Work) -> Work:
        """Queue `work`; returns the work whose futures tell when it is done (a wake-up already waiting
        for this lead covers a second one, and a queue wake-up another)."""
        queue = self._pending.get(lead_id)
        if queue is None:
            queue = self._pending[lead_id] = deque()
            if lead_id not in self._busy:
                self._ready.append(lead_id)
        elif work.trigger in (Trigger.WAKE, Trigger.QUEUE):
            waiting = next((w for w in queue if w.trigger is work.trigger), None)
            if waiting is not None:
                return waiting
        queue.append(work)
        return work

    def take(self, limit: int) -> list[tuple[str, Work]]:
        """Up to `limit` leads, the oldest work of each; they stay busy until `release`."""
        batch: list[tuple[str, Work]] = []
        while self._ready and len(batch) < limit:
            lead_id = self._ready.popleft()
            queue = self._pending[lead_id]
            batch.append((lead_id, queue.popleft()))
            if not queue:
                del self._pending[lead_id]
            self._busy.add(lead_id)
        return batch

    def release(self, lead_ids: list[str]) -> None:
        for lead_id in lead_ids:
            self._busy.discard(lead_id)
            if lead_id in self._pending:
                self._ready.append(lead_id)
