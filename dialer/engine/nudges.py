"""Telling the engines of other processes that a lead is due now.

A web process that has just accepted a lead announces it on the broadcast, so a worker process picks it
up at once instead of at its next poll. The poll stays the safety net: an announcement lost on the way
only delays a lead by one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from dialer.broadcast.memory import Broadcast
from dialer.engine import Engine
from dialer.retrying import Backoff, QuietLog

log = logging.getLogger("ringback.nudges")

NUDGE_CHANNEL = "engine:nudge"
RETRY_SECONDS = 5.0  # the first wait before listening again after the broadcast failed (then growing, jittered)


class NudgeRelay:
    def __init__(self, broadcast: Broadcast, engine: Engine) -> None:
        self.broadcast = broadcast
        self.engine = engine
        self.origin = uuid.uuid4().hex  # our own announcements come back to us: skip them
        self._sending: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._backoff = Backoff(first=RETRY_SECONDS, cap=60.0)
        self._quiet = QuietLog(log)
        engine.announce = self.announce

    def announce(self) -> None:
        task = asyncio.ensure_future(self._publish())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self) -> None:
        try:
            await self.broadcast.publish(NUDGE_CHANNEL, {"from": self.origin})
        except Exception as exc:  # the poll will find the lead; say why it was late
            log.warning("could not tell the other engines about a due lead: %s", exc)

    async def start(self) -> None:
        """Listen for other processes' announcements; returns once listening."""
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(ready), name="nudge-relay")
        await ready.wait()

    async def _listen(self, ready: asyncio.Event) -> None:
        """Listen until stopped; a broadcast that fails is subscribed again a moment later (the poll covers
        the gap)."""
        while True:
            try:
                async with self.broadcast.subscribe(NUDGE_CHANNEL) as announcements:
                    ready.set()
                    self._quiet.recovered("listening for other engines' announcements", self._backoff.succeeded())
                    async for message in announcements:
                        if message.get("from") != self.origin:
                            self.engine.nudge(announce=False)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever it is: this loop never ends but by `stop`
                self._quiet.error("listening for other engines' announcements", exc, now=time.monotonic(),
                                  detail="relying on the poll", trace=False)
            finally:
                ready.set()
            await asyncio.sleep(self._backoff.failed())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
