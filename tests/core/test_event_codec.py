"""Provider reports kept as JSON while held (`dialer/core/event_codec.py`) come back as they were."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from dialer.core.event_codec import decode, encode
from dialer.core.events import KeyPressed, LegAnswered, LegEnded, LegRinging, PriceKnown, RecordingReady
from dialer.core.states import EndReason

REPORTS = [
    LegRinging("leg1", "CA1"),
    LegAnswered("leg1", "CA1"),
    KeyPressed("leg1", None, digits="1"),
    LegEnded("leg1", "CA1", reason=EndReason.NO_ANSWER, duration=0, detail="the callee's phone rang out"),
    PriceKnown("leg1", "CA1", price=Decimal("0.07000"), unit="EUR"),
    RecordingReady("leg1", "CA1", url="https://api.twilio.com/recordings/RE1"),
]


@pytest.mark.parametrize("report", REPORTS, ids=lambda r: type(r).__name__)
def test_a_report_survives_the_round_trip_through_json(report: object) -> None:
    stored = json.loads(json.dumps(encode(report)))  # type: ignore[arg-type]
    assert decode(stored) == report


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(KeyError):
        decode({"kind": "Teleported", "leg_id": "leg1"})
