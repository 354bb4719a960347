"""What one engine step reads of a lead, its call legs and its site's managers: plain records that remember
what the step changed, so the store writes back exactly those columns (no ORM unit of work on the engine's
hot path). The rules (`legs.py`, `step.py`) change them; `dialer/engine/store.py` reads and writes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Self

LEAD_COLUMNS = (
    "id", "site_id", "kind", "status", "version", "phone", "timezone", "scheduled_for", "wake_at", "attempt",
    "preferred_manager_id", "confirmed_at", "reminded_at", "handled_at", "outcome", "source", "created_at",
    "updated_at", "ended_at",
)
MANAGER_COLUMNS = ("id", "site_id", "name", "phone", "position", "active", "working_hours", "busy_lead_id")
LEG_COLUMNS = (
    "id", "lead_id", "step", "role", "manager_id", "to_number", "status", "end_reason", "end_detail", "accepted",
    "bridged_to", "provider_sid", "created_at", "answered_at", "ended_at", "duration", "price", "price_unit",
    "recording_url", "dial_claimed_at", "dial_claimed_by", "starts_at", "checked_at",
)


class Record:
    """A row as read (`_read`), or a new row not yet written (`_read` is None)."""

    __slots__ = ("_read",)
    COLUMNS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, values: Sequence[Any], *, new: bool = False) -> None:
        for name, value in zip(self.COLUMNS, values, strict=True):
            setattr(self, name, value)
        self._read: tuple[Any, ...] | None = None if new else tuple(values)

    @classmethod
    def fresh(cls, **values: Any) -> Self:
        """A row to insert; columns not given are None (the table's defaults do not apply)."""
        return cls([values.get(name) for name in cls.COLUMNS], new=True)

    @property
    def is_new(self) -> bool:
        return self._read is None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.COLUMNS}

    def changes(self) -> dict[str, Any]:
        """The columns assigned a different value since the row was read."""
        if self._read is None:
            return self.values()
        return {
            name: getattr(self, name)
            for name, before in zip(self.COLUMNS, self._read, strict=True)
            if getattr(self, name) != before
        }

    def mark_written(self) -> None:
        self._read = tuple(getattr(self, name) for name in self.COLUMNS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={getattr(self, 'id', None)!r})"


class LeadRow(Record):
    __slots__ = LEAD_COLUMNS
    COLUMNS = LEAD_COLUMNS

    id: str
    site_id: int
    kind: str
    status: str
    version: int
    phone: str
    timezone: str
    scheduled_for: datetime | None
    wake_at: datetime | None
    attempt: int
    preferred_manager_id: int | None
    confirmed_at: datetime | None
    reminded_at: datetime | None
    handled_at: datetime | None
    outcome: str | None
    source: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


class LegRow(Record):
    __slots__ = LEG_COLUMNS
    COLUMNS = LEG_COLUMNS

    id: str
    lead_id: str
    step: str
    role: str
    manager_id: int | None
    to_number: str
    status: str
    end_reason: str | None
    end_detail: str | None
    accepted: bool
    bridged_to: str | None
    provider_sid: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration: int | None
    price: Decimal | None
    price_unit: str | None
    recording_url: str | None
    dial_claimed_at: datetime | None  # when an engine took the leg to dial (the step rules never set these)
    dial_claimed_by: str | None
    starts_at: datetime | None  # when the provider starts placing the call (the ring deadline counts from it)
    checked_at: datetime | None  # when the provider was asked about it, its callbacks being late


class ManagerRow(Record):
    __slots__ = MANAGER_COLUMNS
    COLUMNS = MANAGER_COLUMNS

    id: int
    site_id: int
    name: str
    phone: str
    position: int
    active: bool
    working_hours: dict[str, Any] | None
    busy_lead_id: str | None  # the lead this manager is being rung for or talking on


def attempt_of(step: str) -> int:
    """The attempt a leg belongs to, from its step ("a2:m7" is attempt 2)."""
    return int(step.split(":", 1)[0][1:])
