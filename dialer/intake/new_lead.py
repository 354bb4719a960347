"""Writing a new lead and the first line of its timeline, both or neither: one statement on PostgreSQL,
where every statement is a round trip to the database server; two on SQLite, which runs in the process.

The statements are built once, with bound parameters. The lead is then put in the session as if it had
been loaded, so a caller that changes it afterwards (`caps.apply`) updates it through the ORM, with the
version check.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from dialer.db.models import Lead, LeadEvent, table_of

_LEAD = [column.key for column in table_of(Lead).columns]
_EVENT = ("lead_id", "at", "kind", "status", "detail")
_INSERT_LEAD = insert(table_of(Lead)).values({name: bindparam(f"lead_{name}") for name in _LEAD})
_INSERT_EVENT = insert(table_of(LeadEvent)).values({name: bindparam(f"event_{name}") for name in _EVENT})
# WITH new_lead AS (INSERT INTO leads …) INSERT INTO lead_events …: the foreign key is checked at the end
# of the statement, when the lead is there.
_INSERT_BOTH = _INSERT_EVENT.add_cte(_INSERT_LEAD.cte("new_lead"))


async def write(session: AsyncSession, lead: Lead, *, at: Any, kind: str, status: str, detail: str) -> None:
    """Insert `lead` (every column set, its id included) and one timeline line for it."""
    for name in _LEAD:
        if name not in lead.__dict__:
            setattr(lead, name, None)  # a column left unset is NULL, and known to be, not to be loaded later
    params = {f"lead_{name}": getattr(lead, name) for name in _LEAD}
    params.update(event_lead_id=lead.id, event_at=at, event_kind=kind, event_status=status, event_detail=detail)
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        await conn.execute(_INSERT_BOTH, params)
    else:
        await conn.execute(_INSERT_LEAD, params)
        await conn.execute(_INSERT_EVENT, params)
    make_transient_to_detached(lead)
    session.add(lead)
