"""A Twilio account's limits, as one model for the simulator (`dialer/telephony/simulator.py`) and the
Twilio stand-in (`tests/twilio_standin/pace.py`): the calls-per-second queue of REST-created calls, and
the cap on REST requests in flight. Bookkeeping only, on a timeline of seconds its caller keeps: each
caller waits on its own clock (the simulator on the engine's `Clock`, the stand-in on its event loop).

- Calls created through the REST API leave the account at its calls per second (1 by default, raised on
  request); the others wait in the account's queue, and the create answers at once with `queue_time`,
  Twilio's estimate in milliseconds of the wait. A queued call is `queued`; it becomes `initiated` when it
  leaves the queue; cancelled while queued, it never rings. Calls placed by `<Dial>` from inside a call
  are not paced. https://www.twilio.com/docs/voice/api/call-resource ("Calls Per Second", `queue_time`),
  https://help.twilio.com/articles/223180028
- The queue holds at most about 24 hours of calls; past that a create is refused with HTTP 429, error
  22005 "Call Queue Full". https://www.twilio.com/docs/api/errors/22005
- More REST requests in flight at once than the account allows are refused with HTTP 429, error 20429
  "Too Many Requests", and not processed: safe to try again after a pause.
  https://www.twilio.com/docs/api/errors/20429
"""

from __future__ import annotations

from dataclasses import dataclass

TOO_MANY_REQUESTS = 20429
QUEUE_FULL = 22005
QUEUE_LIMIT = 86_400  # calls waiting at most: a day's worth at the default 1 call per second


@dataclass
class CallQueue:
    """The account's queue of REST-created calls: one leaves every `1 / calls_per_second` seconds."""

    calls_per_second: float | None = None  # None: every call starts at once (an unpaced account)
    limit: int = QUEUE_LIMIT
    waiting: int = 0  # calls in the queue now
    _next_free: float = float("-inf")  # when the next call may leave the queue

    def __post_init__(self) -> None:
        if self.calls_per_second is not None and self.calls_per_second <= 0:
            raise ValueError("calls_per_second must be greater than 0 (or None: unpaced)")

    @property
    def full(self) -> bool:
        return self.waiting >= self.limit

    def admit(self, now: float) -> float:
        """A call created at `now`: the seconds it waits in the queue (0: it leaves at once). A call that
        waits counts as `waiting` until its caller says it `left`."""
        if self.calls_per_second is None:
            return 0.0
        start = max(now, self._next_free)
        self._next_free = start + 1.0 / self.calls_per_second
        wait = start - now
        if wait > 0:
            self.waiting += 1
        return wait

    def left(self) -> None:
        """A call that waited left the queue (placed, or cancelled before it rang)."""
        self.waiting = max(0, self.waiting - 1)


@dataclass
class RequestLimit:
    """REST requests in flight at once: past `concurrent`, a request is refused (20429) unprocessed."""

    concurrent: int | None = None  # None: no limit
    in_flight: int = 0
    most_in_flight: int = 0
    refused: int = 0  # requests refused with 20429

    def enter(self) -> bool:
        """A request arrives: True when it is let in (the caller then calls `leave` once it is answered)."""
        if self.concurrent is not None and self.in_flight >= self.concurrent:
            self.refused += 1
            return False
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return True

    def leave(self) -> None:
        self.in_flight -= 1
