"""The interface every telephony provider keeps, in the spirit of httpx's transports.

A provider places calls, hangs them up and sends text messages when asked; what then happens on the
telephone network it reports as `dialer.events` to the sink the engine attached.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from dialer import metrics
from dialer.core.call_status import CallStatus as CallStatus  # what `call_status` answers (kept in core)
from dialer.core.events import EventSink
from dialer.core.states import LegRole

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class CallRequest:
    leg_id: str
    to: str
    role: LegRole
    timeout: int
    caller_id: str | None = None
    whisper: str | None = None  # read to a manager before the one-digit question
    bridge_sid: str | None = None  # the manager's call the visitor is connected into
    bridge_leg_id: str | None = None  # and that call's leg
    record: bool = False
    time_limit: int | None = None  # seconds a bridged call may last (RINGBACK_MAX_CALL_SECONDS)


class ProviderError(Exception):
    """The provider refused or failed a request. `reason` is shown to people, `code` is the provider's."""

    def __init__(self, reason: str, *, code: str | None = None, permanent: bool = True,
                 rate_limited: bool = False, call_over: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.permanent = permanent
        self.rate_limited = rate_limited  # refused for the account's rate limit: try again later
        self.call_over = call_over  # the call this leg was to join (the manager's) has ended


# Twilio's "Invalid call state" (https://www.twilio.com/docs/api/errors/21220): a call that has completed
# cannot be redirected, so a visitor cannot be dialed into a manager's call that is over. Either provider
# raises it with this code; it means the manager left, never that the provider failed.
CALL_OVER = "21220"


class PlacedCall(str):
    """A provider's call id, with how long the provider said the call waits in its queue before it is
    placed (Twilio's `queue_time`): the ring deadline counts from then."""

    queue_seconds: float = 0.0

    def __new__(cls, sid: str, queue_seconds: float = 0.0) -> PlacedCall:
        placed = super().__new__(cls, sid)
        placed.queue_seconds = queue_seconds
        return placed


def metered(operation: str) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Count a provider method's requests, errors (by the provider's code) and time in `dialer.metrics`."""

    def wrap(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            provider = str(getattr(args[0], "name", "provider"))
            started = time.perf_counter()
            try:
                result = await method(*args, **kwargs)
            except ProviderError as exc:
                metrics.provider_request(provider, operation, time.perf_counter() - started, exc.code, failed=True)
                raise
            except Exception as exc:
                metrics.provider_request(provider, operation, time.perf_counter() - started, type(exc).__name__,
                                         failed=True)
                raise
            metrics.provider_request(provider, operation, time.perf_counter() - started)
            return result

        return counted

    return wrap


class Provider(Protocol):
    name: str

    def attach(self, sink: EventSink | None) -> None:
        """Start (or, with None, stop) delivering events to `sink`."""

    async def place_call(self, request: CallRequest) -> str | None:
        """Dial; returns the provider's call id when it is known at once."""

    async def find_call(self, request: CallRequest, since: datetime) -> str | None:
        """The call placed for this request, if any: used before dialing a step whose fate is unknown."""

    async def call_status(self, sid: str) -> CallStatus | None:
        """How call `sid` stands now: queued, ringing, in progress or ended (how, how long, whether it was
        answered and what answering machine detection said). None: the provider has no such call, and
        never will report one. Raises `ProviderError` when it cannot tell now: nothing is to be concluded
        from that. Asked before a deadline cuts a call whose callbacks are missing, and by reconciliation;
        `dialer.core.call_status.missing_reports` turns the answer into the reports that did not come."""

    async def hangup(self, sid: str, say: str | None = None) -> None: ...

    async def send_text(self, to: str, body: str, sender: str | None = None, *,
                        text_id: str | None = None) -> str | None:
        """Send a text message from `sender` (the site's SMS sender where the provider needs one); returns
        the provider's message id when it has one. `text_id` names our record of it in delivery reports."""

    async def recordings(self, sid: str) -> list[str]:
        """The addresses of call `sid`'s finished recordings, oldest first, as `RecordingReady` reports
        them (empty while there are none yet). A bridged visitor's recording is kept on the call that
        dialed them, the manager's: Twilio attaches a `<Dial>` recording to the parent call. Asked when
        the recording's own report is late (`dialer/engine/jobs.py`); raises `ProviderError` when the
        provider cannot tell now."""

    async def fetch_recording(self, url: str) -> tuple[bytes, str]:
        """The recording at `url` (as reported by `RecordingReady`) and its media type, fetched with the
        provider's own credentials so the dashboard can play it without ever showing them."""

    async def close(self) -> None: ...
