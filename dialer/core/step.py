"""One engine step's unit of change, besides the records it changes in place: the lines it adds to leads'
timelines and the leads that freed a manager. The rules fill it in; the store writes it (`flush`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple


class Line(NamedTuple):
    """A line of a lead's timeline (the dashboard shows them), as the `lead_events` table holds it."""

    lead_id: str
    at: datetime
    kind: str  # status | leg | sms | recording
    status: str | None
    leg_id: str | None
    detail: str


@dataclass
class Step:
    now: datetime
    lines: list[Line] = field(default_factory=list)
    freed: set[str] = field(default_factory=set)  # leads whose manager became free in this step

    def timeline(self, lead_id: str, kind: str, detail: str, *, status: str | None = None,
                 leg_id: str | None = None) -> None:
        self.lines.append(Line(lead_id, self.now, kind, status, leg_id, detail))
