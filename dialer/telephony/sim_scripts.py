"""What a simulated world is scripted with: how each person treats a call to their number (`Behaviour`,
given to `SimulatedProvider.script`) and how unkind the network is to status callbacks (`Hostility`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    """How a simulated person treats an incoming call."""

    answer_after: float | None = 3.0  # None: never picks up
    busy: bool = False
    voicemail: bool = False  # a voicemail greeting answers; it never presses a key
    voicemail_seconds: float = 25.0
    presses: str | None = "1"  # digits a manager presses after hearing the whisper
    press_after: float = 4.0
    talk_for: float = 60.0  # seconds of conversation before this person hangs up
    hangs_up_after: float | None = None  # a manager: seconds after pressing 1 at which they hang up anyway
    # A manager who hangs up in the instant between the visitor's screen (a person) and the bridge.
    hangs_up_at_bridge: bool = False

    @classmethod
    def never_answers(cls) -> Behaviour:
        return cls(answer_after=None)

    @classmethod
    def busy_line(cls) -> Behaviour:
        return cls(busy=True)

    @classmethod
    def voicemail_after(cls, seconds: float = 8.0) -> Behaviour:
        return cls(answer_after=seconds, voicemail=True, presses=None)

    @classmethod
    def presses_1(cls, after: float = 3.0, talk_for: float = 60.0) -> Behaviour:
        return cls(answer_after=after, presses="1", talk_for=talk_for)

    @classmethod
    def presses_1_then_hangs_up(cls, after: float = 3.0, hangs_up_after: float = 1.0) -> Behaviour:
        """A manager who presses 1 and hangs up a moment later (while the visitor rings, or talks)."""
        return cls(answer_after=after, presses="1", hangs_up_after=hangs_up_after)

    @classmethod
    def answers(cls, after: float = 3.0, talk_for: float = 60.0, presses: str | None = None) -> Behaviour:
        return cls(answer_after=after, presses=presses, talk_for=talk_for)


@dataclass(frozen=True)
class Hostility:
    """How unkind the network is to asynchronous status callbacks (seeded by the simulator's seed)."""

    delay: float = 8.0  # seconds a callback may be held back (so callbacks of a call arrive reordered)
    duplicate: float = 0.2  # probability a callback is delivered twice
    lose: float = 0.15  # probability a callback never arrives
    # Probability the Dial action (the visitor's end) is requested at all once the manager hung up
    # during it: not confirmed by Twilio's documentation either way.
    action_after_hangup: float = 0.5
