"""The interface every telephony provider keeps, in the spirit of httpx's transports.

A provider places calls, hangs them up and sends text messages when asked; what then happens on the
telephone network it reports as `dialer.events` to the sink the engine attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dialer.core.events import EventSink, LegEvent
from dialer.core.states import LegRole


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


class ProviderError(Exception):
    """The provider refused or failed a request. `reason` is shown to people, `code` is the provider's."""

    def __init__(self, reason: str, *, code: str | None = None, permanent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.permanent = permanent


class Provider(Protocol):
    name: str

    def attach(self, sink: EventSink | None) -> None:
        """Start (or, with None, stop) delivering events to `sink`."""

    async def place_call(self, request: CallRequest) -> str | None:
        """Dial; returns the provider's call id when it is known at once."""

    async def find_call(self, request: CallRequest, since: datetime) -> str | None:
        """The call placed for this request, if any: used before dialing a step whose fate is unknown."""

    async def ask(self, leg_id: str, sid: str) -> LegEvent | None:
        """How the call `sid` stands now, as the report about leg `leg_id` that did not come (None: it
        is still being set up or ringing, or the provider could not say). Asked before a deadline cuts
        a call whose callbacks are missing."""

    async def hangup(self, sid: str, say: str | None = None) -> None: ...

    async def send_text(self, to: str, body: str, sender: str | None = None) -> None:
        """Send a text message; `sender` is the site's caller ID where the provider needs one."""

    async def fetch_recording(self, url: str) -> tuple[bytes, str]:
        """The recording at `url` (as reported by `RecordingReady`) and its media type, fetched with the
        provider's own credentials so the dashboard can play it without ever showing them."""

    async def close(self) -> None: ...
