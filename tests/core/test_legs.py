"""What the provider's reports do to a leg, and which manager a lead holds: pure, no database."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from dialer.core.events import (
    KeyPressed,
    LegAnswered,
    LegEnded,
    LegEvent,
    LegRinging,
    PriceKnown,
    RecordingReady,
)
from dialer.core.legs import (
    LEG_ONLY,
    UNBRIDGED_SECONDS,
    ManagerTaken,
    apply_report,
    claim_manager,
    end_leg,
    recordings_to_find,
    release_manager,
    who,
)
from dialer.core.records import LegRow, ManagerRow
from dialer.core.states import EndReason, LegStatus
from dialer.core.step import Line, Step
from tests.core.records import NOW, lead_row, manager_leg, managers, visitor_leg

LATER = NOW + timedelta(seconds=30)


def report(
    leg: LegRow, *events: LegEvent, held: list[ManagerRow] | None = None, at: datetime = NOW
) -> tuple[list[bool], Step]:
    """Apply `events` in turn; what each returned (the lead may have changed), and the step's lines."""
    step = Step(at)
    lead = lead_row()
    party = "manager M1" if leg.role == "manager" else "visitor"
    return [apply_report(step, lead, leg, event, party, held if held is not None else []) for event in events], step


def details(step: Step) -> list[str]:
    return [line.detail for line in step.lines]


def test_a_leg_moves_forward_and_each_move_is_a_timeline_line() -> None:
    leg = manager_leg()
    changed, step = report(leg, LegRinging("m1"), LegAnswered("m1"), KeyPressed("m1", digits="1"))
    assert changed == [False, True, True]  # ringing changes nothing for the lead; an answer or a 1 might
    assert (leg.status, leg.answered_at, leg.accepted) == ("answered", NOW, True)
    assert step.lines == [
        Line("L1", NOW, "leg", None, "m1", "manager M1: ringing"),
        Line("L1", NOW, "leg", None, "m1", "manager M1: answered"),
        Line("L1", NOW, "leg", None, "m1", "manager M1: pressed 1"),
    ]


def test_a_duplicated_report_changes_nothing_and_writes_no_second_line() -> None:
    leg = manager_leg()
    changed, step = report(leg, LegRinging("m1"), LegRinging("m1"), LegAnswered("m1"), LegAnswered("m1"))
    assert changed == [False, False, True, False]
    assert details(step) == ["manager M1: ringing", "manager M1: answered"]


def test_a_report_out_of_order_never_moves_a_leg_back() -> None:
    leg = manager_leg()
    changed, step = report(leg, LegAnswered("m1"), LegRinging("m1"))
    assert changed == [True, False]
    assert leg.status == "answered" and details(step) == ["manager M1: answered"]


def test_a_report_on_an_ended_leg_is_ignored() -> None:
    leg = manager_leg(status=LegStatus.ENDED, end_reason="no_answer", ended_at=NOW)
    changed, step = report(leg, LegRinging("m1"), LegAnswered("m1"), KeyPressed("m1", digits="1"),
                           LegEnded("m1", reason=EndReason.COMPLETED))
    assert changed == [False, False, False, False]
    assert (leg.status, leg.end_reason, leg.accepted, leg.answered_at) == ("ended", "no_answer", False, None)
    assert step.lines == []


def test_a_late_end_report_fills_in_only_a_missing_duration() -> None:
    leg = manager_leg(status=LegStatus.ENDED, end_reason="timeout", ended_at=NOW)
    changed, _ = report(leg, LegEnded("m1", reason=EndReason.COMPLETED, duration=42),
                        LegEnded("m1", reason=EndReason.COMPLETED, duration=7))
    assert changed == [False, False] and leg.duration == 42 and leg.end_reason == "timeout"


@pytest.mark.parametrize("digits", ["2", "0", "#", "", "21"])
def test_pressing_a_key_other_than_1_does_not_accept(digits: str) -> None:
    leg = manager_leg(status=LegStatus.RINGING)
    changed, step = report(leg, KeyPressed("m1", digits=digits))
    assert changed == [False] and not leg.accepted
    assert leg.status == "answered"  # someone pressed a key: the call was picked up
    assert details(step) == [f"manager M1: pressed {digits or 'nothing'}"]


def test_pressing_1_after_a_wrong_key_accepts_and_a_second_1_is_a_duplicate() -> None:
    leg = manager_leg(status=LegStatus.ANSWERED, answered_at=NOW)
    changed, step = report(leg, KeyPressed("m1", digits="3"), KeyPressed("m1", digits="1"),
                           KeyPressed("m1", digits="1"), at=LATER)
    assert changed == [False, True, False] and leg.accepted
    assert leg.answered_at == NOW  # answered once, when it was
    assert details(step) == ["manager M1: pressed 3", "manager M1: pressed 1"]


def test_a_key_on_the_visitors_leg_accepts_nothing() -> None:
    leg = visitor_leg(status=LegStatus.ANSWERED)
    changed, step = report(leg, KeyPressed("v1", digits="1"))
    assert changed == [False] and not leg.accepted and step.lines == []


def test_a_leg_that_ends_frees_the_manager_the_lead_held() -> None:
    held = managers("L1", "L2")
    leg = manager_leg(status=LegStatus.ANSWERED, answered_at=NOW)
    changed, step = report(leg, LegEnded("m1", reason=EndReason.COMPLETED, duration=25), held=held, at=LATER)
    assert changed == [True]
    assert (leg.status, leg.end_reason, leg.ended_at, leg.duration) == ("ended", "completed", LATER, 25)
    assert [m.busy_lead_id for m in held] == [None, "L2"]
    assert step.freed == {"L1"}
    assert details(step) == ["manager M1: ended (completed, 25 s)"]


def test_an_end_report_words_the_reason_and_the_providers_detail() -> None:
    leg = manager_leg(status=LegStatus.RINGING)
    _, step = report(leg, LegEnded("m1", reason=EndReason.NO_ANSWER, duration=0, detail="no such number"))
    assert details(step) == ["manager M1: ended (no answer): no such number"]
    assert step.freed == set()  # the lead held no manager (the list is empty)


def test_the_providers_call_id_is_kept_from_the_first_report_that_has_one() -> None:
    leg = manager_leg(provider_sid=None)
    report(leg, LegRinging("m1", sid="CA1"), LegAnswered("m1", sid="CA2"))
    assert leg.provider_sid == "CA1"


def test_a_price_and_a_recording_change_the_leg_alone_even_once_it_ended() -> None:
    leg = visitor_leg(status=LegStatus.ENDED)
    changed, step = report(leg, PriceKnown("v1", price=Decimal("-0.07"), unit="USD"),
                           RecordingReady("v1", url="sim://recordings/1.wav"))
    assert changed == [False, False]
    assert (leg.price, leg.price_unit, leg.recording_url) == (Decimal("-0.07"), "USD", "sim://recordings/1.wav")
    assert details(step) == ["recording of the visitor leg is ready"]
    assert step.lines[0].kind == "recording"


def test_a_second_recording_report_changes_nothing() -> None:
    # Repeated by the provider, late after the recording was looked up (`engine/jobs.py`), or another address.
    leg = visitor_leg(status=LegStatus.ENDED, recording_url="sim://recordings/1.wav")
    changed, step = report(leg, RecordingReady("v1", url="sim://recordings/1.wav"),
                           RecordingReady("v1", url="sim://recordings/2.wav"))
    assert changed == [False, False] and leg.recording_url == "sim://recordings/1.wav" and step.lines == []


def test_a_talked_visitor_leg_that_ends_is_one_to_find_the_recording_of_on_the_managers_call() -> None:
    manager = manager_leg(status=LegStatus.ANSWERED, answered_at=NOW)
    talked = visitor_leg(status=LegStatus.ANSWERED, answered_at=NOW)
    unanswered = visitor_leg(id="v2", step="a2:v:m1", status=LegStatus.RINGING)
    recorded = visitor_leg(id="v3", step="a3:v:m1", status=LegStatus.ANSWERED, answered_at=NOW, recording_url="u")
    over = visitor_leg(id="v4", step="a4:v:m1", status=LegStatus.ENDED, answered_at=NOW)  # ended before
    legs = [manager, talked, unanswered, recorded, over]
    assert recordings_to_find(legs) == []  # nothing ended in this step
    for leg in (manager, talked, recorded):
        end_leg(leg, EndReason.COMPLETED, LATER)
    end_leg(unanswered, EndReason.NO_ANSWER, LATER)
    assert recordings_to_find(legs) == [(talked, "SID-m1")]


@pytest.mark.parametrize("event", [LegRinging("m1"), PriceKnown("m1"), RecordingReady("m1", url="u")])
def test_reports_the_engine_need_not_decide_on_never_change_the_lead(event: LegEvent) -> None:
    # The engine locks neither managers nor site for these (`LEG_ONLY`): they must never ask for a decision.
    assert isinstance(event, LEG_ONLY)
    for status in LegStatus:
        changed, _ = report(manager_leg(status=status), event)
        assert changed == [False]


def test_claiming_a_manager_another_lead_holds_raises() -> None:
    held = managers(None, "L2")
    claim_manager(held, 1, "L1")
    claim_manager(held, 1, "L1")  # holding them already is fine
    assert held[0].busy_lead_id == "L1"
    with pytest.raises(ManagerTaken):
        claim_manager(held, 2, "L1")
    with pytest.raises(ManagerTaken):
        claim_manager(held, 9, "L1")  # not one of the site's managers
    assert [m.busy_lead_id for m in held] == ["L1", "L2"]


def test_only_the_lead_that_holds_a_manager_releases_them() -> None:
    held = managers("L1", "L2", None)
    assert not release_manager(held, 2, "L1")
    assert not release_manager(held, 3, "L1")
    assert not release_manager(held, None, "L1")  # a visitor's leg holds no manager
    assert release_manager(held, 1, "L1")
    assert not release_manager(held, 1, "L1")  # already free
    assert [m.busy_lead_id for m in held] == [None, "L2", None]


def test_ending_a_leg_without_a_duration_counts_from_its_answer() -> None:
    answered = manager_leg(status=LegStatus.ANSWERED, answered_at=NOW)
    end_leg(answered, EndReason.TIMEOUT, LATER)
    assert (answered.status, answered.end_reason, answered.ended_at, answered.duration) == (
        "ended", "timeout", LATER, 30)
    unanswered = manager_leg(status=LegStatus.RINGING)
    end_leg(unanswered, EndReason.CANCELED, LATER)
    assert unanswered.duration is None
    given = manager_leg(status=LegStatus.ANSWERED, answered_at=NOW)
    end_leg(given, EndReason.COMPLETED, LATER, 12)
    assert given.duration == 12


def test_the_timeline_names_the_party_a_leg_rings() -> None:
    assert who(visitor_leg(), {1: "Anna"}) == "visitor"
    assert who(manager_leg(1), {1: "Anna"}) == "manager Anna"
    assert who(manager_leg(2), {1: "Anna"}) == "manager"  # a name not known (a removed manager)


@pytest.mark.parametrize(("bridged", "duration", "reason"), [
    (True, 3, EndReason.COMPLETED),  # the Dial said so: even a short talk was one
    (False, 40, EndReason.NO_ANSWER),  # the Dial said never bridged, whatever the duration
    (None, 40, EndReason.COMPLETED),  # a report that cannot tell: only a bridge explains 40 s
    (None, UNBRIDGED_SECONDS, EndReason.NO_ANSWER),  # detection and the screen, then the manager hung up
])
def test_a_visitors_answered_call_talked_only_when_it_was_bridged(
    bridged: bool | None, duration: int, reason: EndReason
) -> None:
    leg = visitor_leg(status=LegStatus.ANSWERED, answered_at=NOW)
    _, step = report(leg, LegEnded("v1", reason=EndReason.COMPLETED, duration=duration, bridged=bridged), at=LATER)
    assert leg.end_reason == reason
    assert ("talked" in details(step)[-1]) is (reason is EndReason.COMPLETED)


def test_a_managers_end_is_never_judged_as_a_bridge() -> None:
    leg = manager_leg(status=LegStatus.ANSWERED, answered_at=NOW, accepted=True)
    report(leg, LegEnded("m1", reason=EndReason.COMPLETED, duration=2), at=LATER)
    assert leg.end_reason == EndReason.COMPLETED
