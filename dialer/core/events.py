"""What a telephony provider reports about a call leg. The engine cannot tell providers apart by them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from dialer.core.states import EndReason


@dataclass(frozen=True)
class LegEvent:
    leg_id: str
    sid: str | None = None


@dataclass(frozen=True)
class LegInitiated(LegEvent):
    """The provider took the call out of its queue and started placing it (Twilio's `initiated`)."""


@dataclass(frozen=True)
class LegRinging(LegEvent):
    pass


@dataclass(frozen=True)
class LegAnswered(LegEvent):
    pass


@dataclass(frozen=True)
class KeyPressed(LegEvent):
    digits: str = ""


@dataclass(frozen=True)
class LegEnded(LegEvent):
    reason: EndReason = EndReason.COMPLETED
    duration: int | None = None
    detail: str | None = None
    # A visitor's leg: whether it was bridged to the manager (Twilio's `DialBridged`); None when the report
    # cannot tell (a status callback, a fetched call), and the leg's duration has to.
    bridged: bool | None = None


@dataclass(frozen=True)
class LegLost(LegEvent):
    """The provider has no record of the call (it died with a process, or its end was lost): it is over,
    how is not known. The step that applies it judges from what it knows of the leg by then, reports held
    for the lead applied first: answered, it ended `completed`; otherwise `failed`."""

    detail: str | None = None


@dataclass(frozen=True)
class PriceKnown(LegEvent):
    price: Decimal = Decimal(0)
    unit: str = "USD"


@dataclass(frozen=True)
class RecordingReady(LegEvent):
    url: str = ""


EventSink = Callable[[LegEvent], Awaitable[None]]
