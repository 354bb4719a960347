"""A provider's report as plain JSON and back: how a report that could not be applied when it came is
kept (the `held_events` table) until an engine applies it."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from dialer.core.events import (
    KeyPressed,
    LegAnswered,
    LegEnded,
    LegEvent,
    LegLost,
    LegRinging,
    PriceKnown,
    RecordingReady,
)
from dialer.core.states import EndReason

KINDS: dict[str, type[LegEvent]] = {
    cls.__name__: cls for cls in (LegRinging, LegAnswered, KeyPressed, LegEnded, LegLost, PriceKnown, RecordingReady)
}


def encode(event: LegEvent) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        data[f.name] = str(value) if isinstance(value, Decimal | EndReason) else value
    return data


def decode(data: dict[str, Any]) -> LegEvent:
    """The report `encode` wrote; raises KeyError or TypeError for anything else."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    if "price" in fields:
        fields["price"] = Decimal(fields["price"])
    if "reason" in fields:
        fields["reason"] = EndReason(fields["reason"])
    return KINDS[data["kind"]](**fields)
