"""Live updates: publish a message on a channel, and every subscriber of that channel receives it.

In one process the in-memory broadcast is enough; across processes a Redis one is used (same interface).
Here too is what every broadcast shares: the interface, a subscriber's queue and `Subscribers`, the
process's subscribers by channel.
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
    """One subscriber's messages, in order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue()

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self.queue.get()


class Subscribers:
    """This process's subscribers by channel (every broadcast keeps them so: in memory, Redis, LISTEN/NOTIFY);
    a channel is here while someone follows it."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[SubscriberQueue]] = defaultdict(set)

    def __contains__(self, channel: object) -> bool:
        return channel in self._by_channel

    def join(self, channel: str) -> SubscriberQueue:
        sub = SubscriberQueue()
        self._by_channel[channel].add(sub)
        return sub

    def leave(self, channel: str, sub: SubscriberQueue) -> bool:
        """Whether `sub` was the channel's last subscriber (False too once `clear`ed: closed)."""
        subs = self._by_channel.get(channel)
        if subs is None:
            return False
        subs.discard(sub)
        if subs:
            return False
        del self._by_channel[channel]
        return True

    def deliver(self, channel: str, message: Message) -> None:
        for sub in list(self._by_channel.get(channel, ())):
            sub.queue.put_nowait(message)

    def clear(self) -> None:
        self._by_channel.clear()


class MemoryBroadcast:
    def __init__(self) -> None:
        self._subscribers = Subscribers()

    async def publish(self, channel: str, message: Message) -> None:
        self._subscribers.deliver(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[SubscriberQueue]:
        sub = self._subscribers.join(channel)
        try:
            yield sub
        finally:
            self._subscribers.leave(channel, sub)

    async def close(self) -> None:
        self._subscribers.clear()


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)
