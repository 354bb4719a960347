"""Redis first, PostgreSQL's LISTEN/NOTIFY while Redis fails: the broadcast of an installation on
PostgreSQL with `RINGBACK_REDIS_URL` set.

Every subscription listens on both (the LISTEN/NOTIFY connection is one per process, whatever the number
of subscriptions). A message goes through Redis; when Redis does not take it (refused, timed out), through
LISTEN/NOTIFY instead, so a visitor's live status and the engines' nudges keep flowing across processes
while Redis is away, and go back to Redis by themselves as soon as it answers again. A message Redis
took for delivery but failed to confirm may arrive twice: every subscriber already ignores an update it
has seen (the lead's version) and a nudge twice is a nudge.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from dialer.broadcast.memory import Message, SubscriberQueue
from dialer.broadcast.pg_notify import PgNotifyBroadcast
from dialer.broadcast.redis_pubsub import RedisBroadcast


class FallbackBroadcast:
    def __init__(self, primary: RedisBroadcast, backup: PgNotifyBroadcast) -> None:
        self.primary = primary
        self.backup = backup

    async def publish(self, channel: str, message: Message) -> None:
        if not await self.primary.try_publish(channel, message):
            await self.backup.publish(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[SubscriberQueue]:
        merged = SubscriberQueue()

        async def forward(source: SubscriberQueue) -> None:
            while True:
                merged.queue.put_nowait(await source.queue.get())

        async with self.primary.subscribe(channel) as first, self.backup.subscribe(channel) as second:
            tasks = [asyncio.create_task(forward(first)), asyncio.create_task(forward(second))]
            try:
                yield merged
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            await self.backup.close()
