"""Which of a site's queued leads to wake when managers may be free: those that can take one, oldest
first. Pure: the engine reads the queue and the managers, this picks, the engine steps the picked leads
in queue order (where the state machine decides for real)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Waiting:
    """A queued lead, in queue order, with the managers its current attempt has rung already."""

    lead_id: str
    tried: frozenset[int] = frozenset()


def can_take(free: Collection[int], queue: Sequence[Waiting], *, simultaneous: bool = False) -> list[str]:
    """The queued leads that can take one of the `free` managers (on duty, active, held by nobody), in
    queue order: each takes a manager it has not rung yet (ringing simultaneously, every one), and the
    next looks at what is left. A guess the machine then checks: a lead that finds nobody free stays
    queued, unchanged."""
    left = set(free)
    picked: list[str] = []
    for lead in queue:
        if not left:
            break
        untried = sorted(left - lead.tried)
        if not untried:
            continue
        picked.append(lead.lead_id)
        left -= set(untried) if simultaneous else {untried[0]}
    return picked
