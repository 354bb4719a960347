"""Live updates: publish a message on a channel, and every subscriber of that channel receives it.

In one process the in-memory broadcast is enough; across processes a Redis one is used (same interface).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

Message = dict[str, Any]


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Message]: ...


class Broadcast(Protocol):
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def close(self) -> None: ...


class SubscriberQueue:
    """One subscriber's messages, in order (shared by the in-memory and Redis broadcasts)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self.queue.get()


class MemoryBroadcast:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[SubscriberQueue]] = defaultdict(set)

    async def publish(self, channel: str, message: Message) -> None:
        for sub in list(self._subscribers.get(channel, ())):
            sub.queue.put_nowait(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[SubscriberQueue]:
        sub = SubscriberQueue()
        self._subscribers[channel].add(sub)
        try:
            yield sub
        finally:
            self._subscribers[channel].discard(sub)
            if not self._subscribers[channel]:
                del self._subscribers[channel]

    async def close(self) -> None:
        self._subscribers.clear()


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)
