"""Who a site's free managers can take, oldest first (`dialer/core/queue_order.py`)."""

from __future__ import annotations

from dialer.core.queue_order import Waiting, can_take


def test_every_waiting_lead_that_can_take_a_free_manager_is_picked_oldest_first() -> None:
    queue = [Waiting("a"), Waiting("b"), Waiting("c"), Waiting("d")]
    assert can_take({1, 2, 3}, queue) == ["a", "b", "c"]  # not only the head
    assert can_take(set(), queue) == []


def test_a_lead_that_rang_a_manager_already_leaves_them_to_the_next() -> None:
    # "a" rang 1 in this attempt (no answer): 1 is for "b"; "a" waits for another manager.
    queue = [Waiting("a", frozenset({1})), Waiting("b"), Waiting("c")]
    assert can_take({1}, queue) == ["b"]
    assert can_take({1, 2}, queue) == ["a", "b"]


def test_ringing_simultaneously_the_first_lead_takes_every_free_manager() -> None:
    queue = [Waiting("a"), Waiting("b")]
    assert can_take({1, 2}, queue, simultaneous=True) == ["a"]
    assert can_take({1, 2}, [Waiting("a", frozenset({1})), Waiting("b")], simultaneous=True) == ["a", "b"]
