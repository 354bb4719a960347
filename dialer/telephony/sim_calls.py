"""A simulated call as the simulator keeps it, and what is known of it: whether a visitor's call was
bridged, answering machine detection's verdict, what it cost and the tone it "recorded"; the calls
dialed and the texts sent, as the simulator lists them for tests."""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import phonenumbers

from dialer.clock import Timer
from dialer.core.states import EndReason, LegRole
from dialer.telephony.base import CallRequest
from dialer.telephony.sim_scripts import Behaviour

# Per-minute prices by region, in the spirit of a carrier's price list; anything else costs DEFAULT_RATE.
DEFAULT_RATES: dict[str, Decimal] = {
    "US": Decimal("0.0140"),
    "CA": Decimal("0.0140"),
    "GB": Decimal("0.0250"),
    "PL": Decimal("0.0350"),
    "DE": Decimal("0.0400"),
    "FR": Decimal("0.0400"),
    "RU": Decimal("0.1200"),
}
DEFAULT_RATE = Decimal("0.0800")


@dataclass
class SimCall:
    sid: str
    request: CallRequest
    behaviour: Behaviour
    placed_at: datetime
    answered_at: datetime | None = None
    ended: bool = False
    ended_at: datetime | None = None
    partner: SimCall | None = None
    timers: list[Timer] = field(default_factory=list)
    ended_at_s: float | None = None  # how long it was answered, once over
    ringing: bool = False
    end_reason: EndReason | None = None
    connected: bool = False  # the visitor: a person answered and was bridged
    unreported: bool = False  # its end goes unsaid (a Dial action never requested)
    queued: bool = False  # waiting in the account's calls-per-second queue: not dialed yet


@dataclass(frozen=True)
class Dialed:
    to: str
    leg_id: str
    role: LegRole
    at: datetime


@dataclass(frozen=True)
class TextMessage:
    to: str
    body: str
    at: datetime


def bridged(call: SimCall) -> bool | None:
    """A visitor's call: whether it was bridged. The simulator always knows (its durations run at
    `RINGBACK_SIMULATOR_SPEED`, so they could not tell)."""
    return call.connected if call.request.role is LegRole.VISITOR else None


def detection_verdict(call: SimCall, reason: EndReason | None) -> str | None:
    """Answering machine detection's verdict on a visitor's call, in Twilio's words; None before it decided
    (and on managers' calls, where it does not run)."""
    if call.request.role is not LegRole.VISITOR:
        return None
    if call.connected:
        return "human"
    return "machine_start" if reason is EndReason.VOICEMAIL else None


def rate_for(rates: dict[str, Decimal], number: str) -> Decimal:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return DEFAULT_RATE
    return rates.get(region or "", DEFAULT_RATE)


def tone_wav(seconds: float, rate: int = 8000) -> bytes:
    """A short 440 Hz tone as 8 kHz mono WAV: what a simulated call "recorded"."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def price(rates: dict[str, Decimal], call: SimCall, duration: int) -> Decimal:
    """What the call cost: each started minute of an answered call, at its number's rate."""
    minutes = math.ceil(duration / 60) if call.answered_at else 0
    return (rate_for(rates, call.request.to) * minutes).quantize(Decimal("0.00001"))
