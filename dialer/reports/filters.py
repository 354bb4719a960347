"""Which leads a report covers: a `LeadFilter`, and the columns of a lead that reports group and filter by.

Both reports (the leads list and the cost report) narrow their queries with `where`, so a manager sees
the same leads on both pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

from sqlalchemy import Select, func
from sqlalchemy.sql.elements import ColumnElement

from dialer.core.errors import InvalidField
from dialer.db.models import Lead

Columns = TypeVarTuple("Columns")
MAX_TEXT = 500


@dataclass(frozen=True)
class LeadFilter:
    site_ids: frozenset[int] | None = None  # what the user may see; None: everything
    site_id: int | None = None
    status: str | None = None
    source: str | None = None
    campaign: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        # What a database cannot compare (PostgreSQL refuses NUL in text) is refused here, naming the field.
        for name in ("status", "source", "campaign"):
            value = getattr(self, name)
            if value is not None and ("\x00" in value or len(value) > MAX_TEXT):
                raise InvalidField(name, f"The {name} filter is not a value a lead can have.", "invalid")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidField(name, f"The {name} of the period needs a time zone.", "invalid")


# JSON's comparator methods (`as_string`) are not typed: the annotations below say what they return.


def source_label() -> ColumnElement[str]:
    label: ColumnElement[str] = Lead.source["label"].as_string()
    return label


def campaign() -> ColumnElement[str]:
    name: ColumnElement[str] = Lead.utm["campaign"].as_string()
    return name


def landing_page() -> ColumnElement[Any]:
    return func.coalesce(Lead.source["landing_page"].as_string(), Lead.page_url)


def where(query: Select[*Columns], f: LeadFilter) -> Select[*Columns]:
    """`query` narrowed to the leads `f` selects (the query must have `leads` among its FROMs)."""
    if f.site_ids is not None:
        query = query.where(Lead.site_id.in_(f.site_ids or {-1}))
    if f.site_id is not None:
        query = query.where(Lead.site_id == f.site_id)
    if f.status:
        query = query.where(Lead.status == f.status)
    if f.source:
        query = query.where(source_label() == f.source)
    if f.campaign:
        query = query.where(campaign() == f.campaign)
    if f.start is not None:
        query = query.where(Lead.created_at >= f.start)
    if f.end is not None:
        query = query.where(Lead.created_at < f.end)
    return query
