"""The stand-in's account limits: the calls-per-second queue of REST-created calls, and the cap on REST
requests in flight. The model is the simulator's too (`dialer/telephony/account.py`, whose docstring
cites Twilio's documentation); here it is served over HTTP:

- Calls created through the REST API leave the account at its calls per second (1 by default); the
  others wait in a queue, and the create answers at once with `queue_time`, Twilio's estimate in
  milliseconds of the wait (https://www.twilio.com/docs/voice/api/call-resource, "Calls Per Second";
  https://www.twilio.com/en-us/changelog/outbound-call-queue-insights-in-programmable-voice-rest-api).
  A queued call is `queued`; its `initiated` callback is posted when it leaves the queue. A queued call
  that is cancelled (or hung up) never rings. Calls placed by `<Dial>` are not paced (same page).
- More REST requests in flight at once than the account allows are refused with HTTP 429, error 20429,
  and not processed (https://www.twilio.com/docs/api/errors/20429): safe to try again after a pause.
- The queue holds at most 24 hours of calls (error 22005, https://www.twilio.com/docs/api/errors/22005):
  modelled as a refusal past `queue_limit` calls waiting.

Time is compressed by `speed`: one stand-in second is `1 / speed` real seconds, so a test of a long
queue need not last as long (the engine under test runs on `SystemClock(speed)` to match).

    pace = Pace(calls_per_second=1, concurrent_requests=10, speed=10)
    with TwilioStandIn(pace=pace) as twilio: ...
    pace.left_queue[sid]      # real monotonic time the call left the queue (its `initiated`)
    pace.cancelled_in_queue   # sids of calls cancelled before they ever rang
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from dialer.telephony.account import QUEUE_LIMIT, TOO_MANY_REQUESTS, CallQueue, RequestLimit
from tests.twilio_standin.network import Call, Network

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Pace:
    calls_per_second: float | None = None  # None: every call starts at once (the kind world)
    concurrent_requests: int | None = None  # None: no limit on REST requests in flight
    speed: float = 1.0  # stand-in seconds per real second
    latency: float = 0.0  # real seconds each REST request takes to answer (so that requests overlap)
    queue_limit: int = QUEUE_LIMIT
    left_queue: dict[str, float] = field(default_factory=dict)
    queue_times: dict[str, int] = field(default_factory=dict)  # sid -> the queue_time answered (ms)
    cancelled_in_queue: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.queue = CallQueue(self.calls_per_second, self.queue_limit)  # on the stand-in's seconds
        self.requests = RequestLimit(self.concurrent_requests)

    @property
    def refused(self) -> int:
        """Requests answered 20429."""
        return self.requests.refused

    @property
    def most_in_flight(self) -> int:
        return self.requests.most_in_flight

    # the calls-per-second queue --------------------------------------------------------------------

    def full(self) -> bool:
        return self.queue.full

    def place(self, network: Network, call: Call) -> int:
        """Queue a created call at the account's pace; returns its `queue_time` (stand-in milliseconds)."""
        now = asyncio.get_running_loop().time()
        if self.calls_per_second is None:
            self._leave_queue(network, call, now)
            return 0
        wait = self.queue.admit(now * self.speed) / self.speed  # real seconds
        network.calls[call.sid] = call  # listed (status queued) while it waits
        queue_time = round(wait * self.speed * 1000)
        self.queue_times[call.sid] = queue_time
        if wait <= 0:
            self._leave_queue(network, call, now)
            return queue_time
        task = asyncio.ensure_future(self._after(wait, network, call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return queue_time

    async def _after(self, wait: float, network: Network, call: Call) -> None:
        try:
            await asyncio.sleep(wait)
        finally:
            self.queue.left()
        if call.hangup.is_set():  # cancelled while queued: it never rings
            self.cancelled_in_queue.add(call.sid)
            await network._end(call, "canceled")  # noqa: SLF001 - the network's own way of ending a call
            return
        self._leave_queue(network, call, asyncio.get_running_loop().time())

    def _leave_queue(self, network: Network, call: Call, now: float) -> None:
        self.left_queue[call.sid] = now
        network.start(call)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # REST requests in flight ----------------------------------------------------------------------

    def guard(self, app: App) -> App:
        """The stand-in's REST API behind the account's concurrency limit (and its answer latency)."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            if not self.requests.enter():
                await _too_many(send)
                return
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                await app(scope, receive, send)
            finally:
                self.requests.leave()

        return guarded


async def _too_many(send: Send) -> None:
    body = json.dumps({"code": TOO_MANY_REQUESTS, "message": "Too Many Requests", "status": 429,
                       "more_info": f"https://www.twilio.com/docs/errors/{TOO_MANY_REQUESTS}"}).encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
