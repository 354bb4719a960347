"""Records as a step reads them from the database, for the pure tests of the rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dialer.core.records import LeadRow, LegRow, ManagerRow, Record
from dialer.core.states import LeadStatus, LegRole, LegStatus

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def read(record: type[Record], /, **values: Any) -> Any:
    """A record as read (not new): `changes()` reports what a rule assigns afterwards."""
    return record([values.get(name) for name in record.COLUMNS])


def lead_row(status: LeadStatus = LeadStatus.QUEUED, **values: Any) -> LeadRow:
    base: dict[str, Any] = dict(
        id="L1", site_id=1, kind="call", status=status.value, version=1, phone="+48501234567",
        timezone="Europe/Warsaw", wake_at=NOW, attempt=1, created_at=NOW, updated_at=NOW,
    )
    lead: LeadRow = read(LeadRow, **{**base, **values})
    return lead


def manager_leg(manager_id: int = 1, status: LegStatus = LegStatus.INITIATED, **values: Any) -> LegRow:
    base: dict[str, Any] = dict(
        id=f"m{manager_id}", lead_id="L1", step=f"a1:m{manager_id}", role=LegRole.MANAGER.value,
        manager_id=manager_id, to_number=f"+1202555010{manager_id}", status=status.value, accepted=False,
        provider_sid=f"SID-m{manager_id}", created_at=NOW,
    )
    leg: LegRow = read(LegRow, **{**base, **values})
    return leg


def visitor_leg(status: LegStatus = LegStatus.INITIATED, **values: Any) -> LegRow:
    base: dict[str, Any] = dict(
        id="v1", lead_id="L1", step="a1:v:m1", role=LegRole.VISITOR.value, to_number="+48501234567",
        status=status.value, accepted=False, bridged_to="m1", provider_sid="SID-v1", created_at=NOW,
    )
    leg: LegRow = read(LegRow, **{**base, **values})
    return leg


def managers(*busy: str | None) -> list[ManagerRow]:
    """One manager per argument (ids 1, 2, …, named M1, M2, …), each held by that lead, or free (None)."""
    return [
        read(ManagerRow, id=i, site_id=1, name=f"M{i}", phone=f"+1202555010{i}", position=i, active=True,
             busy_lead_id=lead_id)
        for i, lead_id in enumerate(busy, start=1)
    ]
