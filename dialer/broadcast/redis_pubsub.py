"""Live updates across processes through Redis pub/sub: the same interface as the in-memory broadcast.

One Redis connection per process carries every subscription: a channel is subscribed in Redis when its
first local subscriber arrives and unsubscribed when the last one leaves, and one reader task hands each
message to the local queues. `subscribe` returns only once Redis has confirmed the subscription, so a
caller that subscribes and then reads the database misses nothing published after its read.

Messages are not stored: a process that is disconnected from Redis misses what was published meanwhile.
Correctness never depends on them (the database holds the truth); they make the widget and the engines
react sooner.

Redis is an optimisation, never a dependency: while it is away `publish` drops the message (logged, at
most once a minute) and `subscribe` still returns at once with a subscription that receives nothing
until Redis is back; the reader keeps retrying and subscribes the waiting channels again when it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from dialer import metrics
from dialer.broadcast.memory import Message, SubscriberQueue, Subscribers, encode

log = logging.getLogger("ringback.redis")

DEFAULT_PREFIX = "ringback:"
RECONNECT_DELAY = 1.0  # seconds between attempts while Redis is unreachable
READ_TIMEOUT = 1.0  # the reader looks for channels left unsubscribed by a failure this often
CONFIRM_TIMEOUT = 2.0  # a subscriber waits at most this long for Redis to confirm its channel
CONNECT_TIMEOUT = 2.0  # seconds to reach Redis before an attempt counts as failed
LOG_EVERY = 60.0  # seconds between two log lines about failed publishes
PUBLISH_TIMEOUT = 2.0  # seconds a publish waits for Redis
PUBLISH_CONCURRENCY = 16  # publishes sent at once; the others wait their turn

FAILURES = (RedisError, OSError, TimeoutError)


class RedisBroadcast:
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self._redis: redis.Redis = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT
        )
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._subscribers = Subscribers()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._publishing = asyncio.Semaphore(PUBLISH_CONCURRENCY)
        self._dropped = 0  # publishes failed since the last log line about them
        self._logged_at: float | None = None

    async def publish(self, channel: str, message: Message) -> None:
        """Send a message to every subscriber; never raises (while Redis is away the message is lost)."""
        await self.try_publish(channel, message)

    async def try_publish(self, channel: str, message: Message) -> bool:
        """`publish`, saying whether Redis took the message (`fallback` then sends it another way)."""
        try:
            # Bounded: a Redis that hangs must not hold up the step whose news this is.
            await asyncio.wait_for(self._publish(channel, message), PUBLISH_TIMEOUT)
        except FAILURES as exc:
            metrics.REDIS_FALLBACKS.labels("publish").inc()
            self._dropped += 1
            now = time.monotonic()
            if self._logged_at is None or now - self._logged_at >= LOG_EVERY:
                log.warning("publishing to Redis failed (%s): %d update(s) not sent through it",
                            type(exc).__name__, self._dropped)
                self._logged_at, self._dropped = now, 0
            return False
        return True

    async def _publish(self, channel: str, message: Message) -> None:
        # A few connections at a time: a burst (a batch of leads, several hands) larger than redis-py's pool
        # of 100 connections would otherwise be refused with MaxConnectionsError.
        async with self._publishing:
            await self._redis.publish(self.prefix + channel, encode(message))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[SubscriberQueue]:
        sub = self._subscribers.join(channel)
        try:
            await self._listen(channel)
            yield sub
        finally:
            if self._subscribers.leave(channel, sub):
                await self._unlisten(channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
            self._pubsub = None
        self._subscribers.clear()
        await self._redis.aclose()

    # the one shared subscription ---------------------------------------------------------------------

    async def _listen(self, channel: str) -> None:
        async with self._lock:
            event = self._confirmed.get(channel)
            if event is None:
                event = self._confirmed[channel] = asyncio.Event()
                if self._pubsub is None:
                    self._pubsub = self._redis.pubsub()
                if self._reader is None:
                    self._reader = asyncio.create_task(self._read(), name="redis-broadcast")
                try:
                    await self._pubsub.subscribe(self.prefix + channel)
                except FAILURES as exc:  # the reader subscribes it once Redis is back
                    log.warning("subscribing to Redis failed (%s); updates wait for it", type(exc).__name__)
                    return
        # Confirmed by the reader; a connection lost meanwhile must not keep the subscriber waiting.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), CONFIRM_TIMEOUT)

    async def _resubscribe(self) -> None:
        """Subscribe the channels a failure left out (redis-py itself renews only those it had)."""
        async with self._lock:
            missing = [self.prefix + c for c in self._confirmed if self.prefix + c not in self._pubsub.channels]
            if missing:
                await self._pubsub.subscribe(*missing)

    async def _unlisten(self, channel: str) -> None:
        async with self._lock:
            if channel in self._subscribers or channel not in self._confirmed or self._pubsub is None:
                return  # someone subscribed again meanwhile, or the broadcast is closed
            del self._confirmed[channel]
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(self.prefix + channel)

    async def _read(self) -> None:
        failing = False  # an outage is logged when it starts and when it ends, not at every retry
        while True:
            try:
                await self._resubscribe()
                if self._pubsub.connection is None:  # nothing subscribed yet: nothing to read
                    await asyncio.sleep(READ_TIMEOUT)
                    continue
                message = await self._pubsub.get_message(timeout=READ_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the reader must outlive any one failure, or updates stop for good
                # redis-py reconnects and subscribes again on the next read; wait a moment first.
                metrics.REDIS_FALLBACKS.labels("read").inc()
                if not failing:
                    log.warning("reading from Redis failed (%s); retrying every %.0f s", type(exc).__name__,
                                RECONNECT_DELAY)
                failing = True
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            if failing:
                log.warning("reading from Redis works again")
                failing = False
            if message is not None:
                self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        channel = str(message.get("channel", ""))[len(self.prefix) :]
        if message["type"] == "subscribe":
            if (event := self._confirmed.get(channel)) is not None:
                event.set()
            return
        if message["type"] != "message":
            return
        try:
            data = json.loads(message["data"])
        except ValueError:
            log.warning("ignored a message on %s that is not JSON", channel)
            return
        self._subscribers.deliver(channel, data)
