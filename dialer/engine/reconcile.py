"""Reconciliation: settling, from the provider's own word, calls whose end may never be reported.

A leg with a provider call id that has not ended waits for the provider's report of its end. When the
process that would have received that report died (a worker killed during bridged calls), or a webhook
was lost, nothing else ends it before the policy's call-length cut-off (hours), and its managers stay busy
meanwhile. So at start-up, and every `interval` seconds after, the engine asks the provider about such
legs and settles each from the answer, as if the provider had reported it:

- the call is over: its end (how, and how long it talked) is applied, with its answer first when that
  went unreported too; a machine's answer is the visitor's voicemail, never a conversation;
- it is still going on: what the leg's records lack of it is reported (an answer), else left alone;
- the provider has no such call: it can never report one, so the leg is ended, saying so (an answered
  call "completed", one never answered "failed", as the step that applies it knows the leg: `LegLost`);
- the provider cannot tell now: asked again next round.

Every engine reconciles; two asking about one leg report its end twice, which the engine applies once.
A round that fails (the database away) is tried again after a jittered, growing wait, logged quietly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.clock import Clock, Timer
from dialer.core.call_status import missing_reports
from dialer.core.events import LegEvent, LegLost
from dialer.core.states import TERMINAL, LegRole, LegStatus
from dialer.db.models import CallLeg, Lead, table_of
from dialer.retrying import Backoff, QuietLog
from dialer.telephony.base import CallStatus, Provider, ProviderError

log = logging.getLogger("ringback.reconcile")

RECONCILE_EVERY = 60.0  # seconds between rounds (simulated seconds on a sped-up clock)
# On the timer, only legs placed longer ago than this: a younger call's reports are most likely on the way.
SETTLE_AFTER = 60.0
PAGE = 500  # legs looked at in one round at most (the oldest first); the next round takes the rest
ASKING = 8  # provider requests at once
UNKNOWN = "the telephony provider has no record of this call (its end was lost, e.g. in a restart)"

_legs = table_of(CallLeg)
_leads = table_of(Lead)
_UNSETTLED = (
    select(_legs.c.id, _legs.c.lead_id, _legs.c.provider_sid, _legs.c.role, _legs.c.status, _legs.c.answered_at)
    .join(_leads, _leads.c.id == _legs.c.lead_id)
    .where(
        _legs.c.provider_sid.is_not(None),
        _legs.c.status != LegStatus.ENDED.value,
        _leads.c.status.not_in([s.value for s in TERMINAL]),
        _legs.c.created_at <= bindparam("before", type_=_legs.c.created_at.type),
    )
    .order_by(_legs.c.created_at)
    .limit(bindparam("limit"))
)


@dataclass
class Round:
    """What one round found: legs asked about, ended from the provider's answer, ended as unknown."""

    asked: int = 0
    ended: int = 0
    unknown: int = 0


class Reconciler:
    def __init__(
        self,
        database: AsyncEngine,
        provider: Provider,
        clock: Clock,
        report: Callable[[LegEvent], Awaitable[None]],
        slots: asyncio.Semaphore,
        *,
        interval: float = RECONCILE_EVERY,
    ) -> None:
        self.autocommit = database.execution_options(isolation_level="AUTOCOMMIT")
        self.provider = provider
        self.clock = clock
        self.interval = interval
        self._report = report
        self._slots = slots
        self._asking = asyncio.Semaphore(ASKING)
        self._backoff = Backoff(first=5.0, cap=300.0)
        self._quiet = QuietLog(log)
        self._timer: Timer | None = None
        self._round: asyncio.Task[Any] | None = None  # the round under way (`stop` lets it finish: `wait`)
        self._repeat = False
        self.running = False
        self.rounds: list[Round] = []  # the last few rounds, newest last (tests and logs read them)

    def start(self, *, repeat: bool) -> None:
        """Reconcile every unsettled leg now (in the background), then, with `repeat`, every `interval`."""
        self.running, self._repeat = True, repeat
        self._set_timer(0.0)

    def stop(self) -> None:
        self.running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set_timer(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(delay, self._tick) if self.running else None

    async def wait(self) -> None:
        """Until the round under way (if any) is over."""
        if self._round is not None:
            await asyncio.gather(self._round, return_exceptions=True)

    async def _tick(self) -> None:
        self._timer = None
        if not self.running:
            return
        self._round = asyncio.current_task()
        try:
            await self._tick_once()
        finally:
            self._round = None

    async def _tick_once(self) -> None:
        first = not self.rounds
        delay: float | None = self.interval if self._repeat else None
        try:
            done = await self.run_once(older_than=0.0 if first else SETTLE_AFTER)
        except Exception as exc:
            # Whatever failed (the database away, most likely), try again later: never stop for good. The
            # start-up round is tried again even without the timer, until it has gone through once.
            self._quiet.error("reconciling calls", exc, now=time.monotonic())
            delay = self._backoff.failed()
        else:
            self._quiet.recovered("reconciling calls", self._backoff.succeeded())
            if done.ended or done.unknown:
                log.info("reconciled %d call(s) with the provider: %d ended, %d unknown to it",
                         done.asked, done.ended, done.unknown)
        finally:
            if delay is not None and self.running:
                self._set_timer(delay)

    async def run_once(self, older_than: float) -> Round:
        """Ask the provider about every unsettled leg placed more than `older_than` seconds ago (a page of
        them, oldest first) and report what it says."""
        before = self.clock.now() - timedelta(seconds=older_than)
        async with self._slots, self.autocommit.connect() as conn:
            rows = (await conn.execute(_UNSETTLED, {"before": before, "limit": PAGE})).all()
        answers = await asyncio.gather(*(self._ask(row.provider_sid) for row in rows), return_exceptions=True)
        done = Round(asked=len(rows))
        # Each lead's reports, its visitor's first (how long a conversation lasted is the visitor's call's
        # to say), each leg's in order (its answer before its end).
        settling: dict[str, list[LegEvent]] = {}
        for row, answer in zip(rows, answers, strict=True):
            if isinstance(answer, BaseException):
                why = answer.reason if isinstance(answer, ProviderError) else repr(answer)
                self._quiet.error("asking the provider about a call", answer, now=time.monotonic(),
                                  detail=why, trace=False)
                continue  # it cannot tell now: asked again next round
            if answer is None:
                done.unknown += 1
                # How it ended is judged by the step that applies it, after the reports held for its
                # lead (an answer held while the database was away): `core/legs.py`.
                found: tuple[LegEvent, ...] = (LegLost(row.id, row.provider_sid, detail=UNKNOWN),)
            else:
                done.ended += answer.ended
                found = missing_reports(row.id, row.provider_sid, LegRole(row.role), LegStatus(row.status), answer)
            reports = settling.setdefault(row.lead_id, [])
            reports[:] = [*found, *reports] if row.role == LegRole.VISITOR else [*reports, *found]
        for outcome in await asyncio.gather(*(self._settle(reports) for reports in settling.values() if reports),
                                            return_exceptions=True):
            if isinstance(outcome, Exception):
                self._quiet.error("settling a call", outcome, now=time.monotonic())
        self.rounds = [*self.rounds[-9:], done]
        return done

    async def _settle(self, reports: list[LegEvent]) -> None:
        for report in reports:
            await self._report(report)

    async def _ask(self, sid: str) -> CallStatus | None:
        async with self._asking:
            return await self.provider.call_status(sid)

