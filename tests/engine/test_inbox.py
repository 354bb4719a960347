"""The engine's inbox: work for a lead is done in order, never by two batches at once."""

from __future__ import annotations

from dialer.core.events import LegRinging
from dialer.core.machine import Trigger
from dialer.engine.inbox import Inbox, Work


async def test_a_lead_in_a_batch_is_not_handed_out_again_until_released() -> None:
    inbox = Inbox()
    first, second = Work(Trigger.WAKE), Work(Trigger.LEG, LegRinging("leg-1"))
    inbox.put("a", first)
    inbox.put("b", Work(Trigger.WAKE))
    assert [lead for lead, _ in inbox.take(10)] == ["a", "b"]
    inbox.put("a", second)  # a report arrives while "a" is being stepped
    assert inbox.take(10) == []
    inbox.release(["a", "b"])
    assert inbox.take(10) == [("a", second)]


async def test_work_for_one_lead_comes_out_in_arrival_order_one_per_batch() -> None:
    inbox = Inbox()
    ring, cancel = Work(Trigger.LEG, LegRinging("leg-1")), Work(Trigger.CANCEL)
    inbox.put("a", ring)
    inbox.put("a", cancel)
    assert inbox.take(10) == [("a", ring)]
    inbox.release(["a"])
    assert inbox.take(10) == [("a", cancel)]


async def test_a_second_wake_up_for_a_waiting_lead_joins_the_first() -> None:
    inbox = Inbox()
    inbox.put("a", Work(Trigger.LEG, LegRinging("leg-1")))
    first = inbox.put("a", Work(Trigger.WAKE))
    assert inbox.put("a", Work(Trigger.WAKE)) is first
    inbox.take(10)
    inbox.release(["a"])
    assert inbox.take(10) == [("a", first)]
    inbox.release(["a"])
    assert inbox.take(10) == []


async def test_a_batch_holds_at_most_the_limit() -> None:
    inbox = Inbox()
    for i in range(7):
        inbox.put(f"lead-{i}", Work(Trigger.WAKE))
    assert len(inbox.take(5)) == 5
    assert len(inbox) == 2
