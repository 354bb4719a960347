"""The engine's hands: work handed to the inbox, taken in batches of distinct leads by a few hands at
once, each batch stepped in one transaction (one lead at a time when the batch fails; tried again after
a deadlock), then acted on after the commit (the visitor's bridge first). After a batch that failed for
want of the database, the hands wait a growing while.

A part of `Engine` (`engine.py` wires it); the attributes it reads are declared below.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from dialer import metrics
from dialer.clock import Clock
from dialer.core.records import LeadRow
from dialer.core.states import LegRole
from dialer.engine import conflicts
from dialer.engine.dialing import Dialer
from dialer.engine.held import HeldEvents
from dialer.engine.inbox import Inbox, Work
from dialer.engine.parking import Parking
from dialer.engine.queue import QueueWaker
from dialer.engine.stepping import Job
from dialer.engine.telling import Teller
from dialer.retrying import Backoff, QuietLog, database_down

log = logging.getLogger("ringback.engine")

# Leads stepped in one transaction at most (when work piles up; under light load a batch is one lead).
BATCH = 50
# Batches being stepped at once. Few: when work piles up, a few large batches cost far fewer round trips
# than many small ones.
HANDS = 4


class Hands:
    clock: Clock
    inbox: Inbox
    held: HeldEvents
    queue: QueueWaker
    parking: Parking
    dialer: Dialer
    teller: Teller
    hands: int  # how many batches may be stepped at once
    batches: int
    _hands: int
    _busy: int
    _idle: asyncio.Event
    _tasks: set[asyncio.Task[None]]
    _hands_resume_at: datetime | None
    _hand_backoff: Backoff
    _quiet: QuietLog
    _slots: asyncio.Semaphore

    if TYPE_CHECKING:  # the other parts'
        def _schedule(self, delay: float) -> None: ...
        async def _step(self, batch: list[tuple[str, Work]]) -> dict[str, Any]: ...

    def submit(self, lead_id: str, work: Work) -> asyncio.Future[LeadRow | None]:
        """Queue `work` for the lead; the future resolves once it is committed and acted on."""
        done = self.inbox.put(lead_id, work).done
        self._pump()
        return done

    def enqueue(self, items: list[tuple[str, Work]]) -> list[Work]:
        """Queue work for several leads at once, in this order (one batch steps them in it); returns the
        work whose futures tell when each is done."""
        works = [self.inbox.put(lead_id, work) for lead_id, work in items]
        self._pump()
        return works

    def _pump(self) -> None:
        if self._hands_resume_at is not None and self.clock.now() < self._hands_resume_at:
            return  # the database was away: the hands wait (`_after_batch`)
        while self._hands < self.hands and len(self.inbox):
            batch = self.inbox.take(BATCH)
            self.batches += 1
            self._hands += 1
            self._busy += 1  # counted from now, so that `stop` waits for it even before it starts
            self._idle.clear()
            task = asyncio.ensure_future(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, Work]]) -> None:
        plans: dict[str, Any] = {}
        try:
            try:
                plans = await self._step_batch(batch)
                # A manager became free: the longest-waiting leads of that site that can take one are
                # stepped now (`queue.py`).
                self.queue.wake({job.lead.site_id for job in plans.values()
                                 if isinstance(job, Job) and job.plan.released_managers})
            finally:
                self.inbox.release([lead_id for lead_id, _ in batch])
                self._hands -= 1
                self._after_batch(plans)
                self.parking.observe(plans)
                self._pump()
                for lead_id, work in batch:
                    if not work.committed.done():
                        outcome = plans.get(lead_id)
                        failed = isinstance(outcome, BaseException)
                        work.committed.set_result(None if failed else isinstance(outcome, Job))
            await self._perform([job for job in plans.values() if isinstance(job, Job)])
        except Exception as exc:
            # Committed, but acting on it failed: what was not dialed is found again (recover_pending_legs).
            self._quiet.error("acting on a step", exc, now=time.monotonic())
        finally:
            for lead_id, work in batch:
                outcome = plans.get(lead_id)
                if work.done.done():
                    continue
                if isinstance(outcome, BaseException):
                    work.done.set_exception(outcome)
                else:
                    work.done.set_result(outcome.lead if outcome is not None else None)
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    def _after_batch(self, outcomes: dict[str, Any]) -> None:
        """A batch whose every lead failed for want of the database: the hands wait a growing while
        before the next (what is in the inbox stays there); the first batch that goes well ends it."""
        failures = [o for o in outcomes.values() if isinstance(o, BaseException)]
        if failures and len(failures) == len(outcomes) and all(database_down(e) for e in failures):
            delay = self._hand_backoff.failed()
            resume = self.clock.now() + timedelta(seconds=delay)
            if self._hands_resume_at is None or resume > self._hands_resume_at:
                self._hands_resume_at = resume
                self.clock.call_later(delay, self._resume_hands)
        elif len(failures) < len(outcomes):
            if self._hand_backoff.failures:
                self._quiet.recovered("stepping a lead", self._hand_backoff.succeeded())
            self._hands_resume_at = None

    async def _resume_hands(self) -> None:
        if self._hands_resume_at is not None and self.clock.now() >= self._hands_resume_at:
            self._hands_resume_at = None
            self._pump()

    async def _step_batch(self, batch: list[tuple[str, Work]]) -> dict[str, Any]:
        """Step the batch in one transaction; when that fails, each lead alone, so one lead's trouble
        stays its own. Returns each lead's plan, None (nothing to do) or the exception it met."""
        try:
            return await self._step_alone(batch)
        except Exception as exc:
            if len(batch) == 1:
                self._quiet.error("stepping a lead", exc, now=time.monotonic(), detail=batch[0][0],
                                  trace=_traced(exc))
                return {batch[0][0]: exc}
        outcomes: dict[str, Any] = {}
        for item in batch:
            try:
                outcomes.update(await self._step_alone([item]))
            except Exception as exc:
                self._quiet.error("stepping a lead", exc, now=time.monotonic(), detail=item[0], trace=_traced(exc))
                outcomes[item[0]] = exc
        return outcomes

    async def _step_alone(self, batch: list[tuple[str, Work]]) -> dict[str, Any]:
        """One transaction, tried again after a deadlock or a serialization failure (the work is kept)."""

        async def attempt() -> dict[str, Any]:
            # Reports about these leads kept in memory are written first: the step applies them, in order.
            await self.held.write_kept({lead_id for lead_id, _ in batch})
            async with self._slots:
                with metrics.STEP_SECONDS.time():
                    return await self._step(batch)

        return await conflicts.retried("a step", attempt)

    # after the commit -------------------------------------------------------------------------------

    async def _perform(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        # A visitor is connected first: that <Dial> is the reply a manager's key press is waiting for
        # (`telephony/twilio.py`), and nothing else the step does may stand before it. The rest (hang-ups
        # of the other managers, news, texts, new rings, questions to the provider) then runs at once.
        calls = [(job.lead, job.site, leg) for job in jobs for leg, _ in job.plan.calls]
        bridges = [item for item in calls if item[2].role == LegRole.VISITOR]
        await self.dialer.dial(bridges)
        checks = [(job.lead, job.site, leg) for job in jobs for leg in job.plan.checks]
        told, *_ = await asyncio.gather(
            asyncio.gather(*(self.teller.tell(job.plan, job.site) for job in jobs), return_exceptions=True),
            self.dialer.dial([item for item in calls if item[2].role != LegRole.VISITOR]),
            self.dialer.check(checks),
        )
        # What a step tells the world never stands between it and its dial: a failure there is logged.
        for job, outcome in zip(jobs, told, strict=True):
            if isinstance(outcome, Exception):
                log.warning("telling lead %s's step failed: %r", job.lead.id, outcome)
        for job in jobs:
            if job.lead.wake_at is not None:
                self._schedule((job.lead.wake_at - self.clock.now()).total_seconds())


def _traced(exc: BaseException) -> bool:
    """Whether an error is logged with its text: not a constraint's refusal, whose text holds the row's
    values (a visitor's number, for the one-active-request-per-number index)."""
    return not isinstance(exc, IntegrityError)
