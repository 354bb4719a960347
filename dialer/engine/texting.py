"""Sending a visitor a text message, and keeping what became of it.

Each text is a `text_messages` row, written before the provider is asked (`sending`), then moved on by
its answer (`queued` with its sid, or `refused` / `failed` with the reason) and later by delivery
callbacks (`server/twilio_sms.py`), forward only (`dialer/core/texts.py`). The lead's timeline says each
step in words, so nothing failed is ever shown as sent. A number that replied STOP (or that the provider
refuses as unsubscribed, 21610) gets no text until it replies START; the timeline says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from decimal import Decimal

from sqlalchemy import delete, desc, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dialer.clock import Clock
from dialer.core import texts
from dialer.core.records import LeadRow
from dialer.db.models import Lead, LeadEvent, SmsOptOut, TextMessage, new_id, table_of
from dialer.telephony.base import Provider, ProviderError

log = logging.getLogger("ringback.texts")

messages = table_of(TextMessage)
opt_outs = table_of(SmsOptOut)
events = table_of(LeadEvent)
leads = table_of(Lead)
UNSUBSCRIBED = "21610"  # Twilio: the recipient replied STOP to this sender


class Texter:
    def __init__(self, database: AsyncEngine, provider: Provider, clock: Clock) -> None:
        self.database = database
        self.provider = provider
        self.clock = clock

    async def send(self, lead: LeadRow, kind: str, body: str, sender: str | None) -> str:
        """Send one text to the lead's visitor; returns the status it was left in."""
        body = texts.with_opt_out(body, lead.phone)
        text_id, now = new_id(), self.clock.now()
        async with self.database.begin() as conn:  # the text and its timeline line are seen together
            stopped = await opted_out_at(conn, lead.phone)
            if stopped is not None:
                await _write(conn, text_id, lead.id, kind, sender, "opted_out", now,
                             detail=f"the visitor replied STOP on {stopped:%Y-%m-%d}")
                await timeline(conn, lead.id, now, f"text message ({kind}) not sent: the visitor replied STOP "
                                                   "to our texts (until they reply START)")
                return "opted_out"
            await _write(conn, text_id, lead.id, kind, sender, "sending", now)
        try:
            sid = await self.provider.send_text(lead.phone, body, sender=sender, text_id=text_id)
        except ProviderError as exc:
            status = "refused" if exc.permanent else "failed"
            log.warning("text message for lead %s not sent: %s", lead.id, exc.reason)
            async with self.database.begin() as conn:
                await _update(conn, text_id, self.clock.now(), status=status, error_code=exc.code, detail=exc.reason)
                await timeline(conn, lead.id, self.clock.now(), f"text message ({kind}) not sent: {exc.reason}")
                if exc.code == UNSUBSCRIBED:
                    await opt_out(conn, lead.phone, self.clock.now(), "STOP")
            return status
        async with self.database.begin() as conn:
            await _update(conn, text_id, self.clock.now(), status="queued", provider_sid=sid)
            shown = f": {sid}" if sid else ""
            await timeline(conn, lead.id, self.clock.now(), f"text message ({kind}) accepted by the provider{shown}")
        return "queued"


async def _write(conn: AsyncConnection, text_id: str, lead_id: str, kind: str, sender: str | None, status: str,
                 now: datetime, detail: str | None = None) -> None:
    await conn.execute(insert(messages).values(id=text_id, lead_id=lead_id, kind=kind, sender=sender, status=status,
                                               detail=detail, created_at=now, updated_at=now))


async def _update(conn: AsyncConnection, text_id: str, now: datetime, **values: object) -> None:
    await conn.execute(update(messages).where(messages.c.id == text_id).values(updated_at=now, **values))


async def timeline(conn: AsyncConnection, lead_id: str, at: datetime, detail: str) -> None:
    await conn.execute(insert(events).values(lead_id=lead_id, at=at, kind="sms", status=None, leg_id=None,
                                             detail=detail))


# opt-outs ------------------------------------------------------------------------------------------


async def opted_out_at(conn: AsyncConnection, phone: str) -> datetime | None:
    at: datetime | None = (await conn.execute(select(opt_outs.c.at).where(opt_outs.c.phone == phone))).scalar()
    return at


async def opt_out(conn: AsyncConnection, phone: str, now: datetime, word: str) -> None:
    with contextlib.suppress(IntegrityError):  # opted out already
        await conn.execute(insert(opt_outs).values(phone=phone, at=now, keyword=word[:16]))


async def opt_in(conn: AsyncConnection, phone: str) -> bool:
    return (await conn.execute(delete(opt_outs).where(opt_outs.c.phone == phone))).rowcount > 0


async def latest_lead(conn: AsyncConnection, phone: str) -> str | None:
    """The newest lead from this number (its timeline tells of the visitor's STOP or START)."""
    query = select(leads.c.id).where(leads.c.phone == phone).order_by(desc(leads.c.created_at)).limit(1)
    lead_id: str | None = (await conn.execute(query)).scalar()
    return lead_id


# delivery ------------------------------------------------------------------------------------------


async def delivery_reported(conn: AsyncConnection, text_id: str, sid: str | None, status: str, now: datetime,
                            error: str | None = None) -> tuple[str, str] | None:
    """A delivery callback: move the text's status forward (a late, duplicated or reordered report
    changes nothing). Returns (lead id, kind) when the status moved."""
    row = (await conn.execute(select(messages.c.lead_id, messages.c.kind, messages.c.status, messages.c.provider_sid)
                              .where(messages.c.id == text_id))).first()
    if row is None or (sid and row.provider_sid not in (None, sid)) or not texts.moves_forward(row.status, status):
        return None
    moved = await conn.execute(
        update(messages).where(messages.c.id == text_id, messages.c.status == row.status)
        .values(status=status, provider_sid=row.provider_sid or sid, error_code=error, updated_at=now)
    )
    if moved.rowcount != 1:
        return None  # another report moved it first
    what = f"text message ({row.kind}): {status}" + (f" (error {error})" if error else "")
    await timeline(conn, row.lead_id, now, what)
    return row.lead_id, row.kind


async def set_price(conn: AsyncConnection, sid: str, price: Decimal, unit: str) -> None:
    await conn.execute(update(messages).where(messages.c.provider_sid == sid).values(price=price, price_unit=unit))


_pricing: set[asyncio.Task[None]] = set()


def price_later(provider: Provider, database: AsyncEngine, sid: str, delays: tuple[float, ...]) -> None:
    """Fetch a final text's price with backoff until the provider fills it in, then keep it."""
    fetch = getattr(provider, "fetch_text_price", None)
    if fetch is None:
        return

    async def hunt() -> None:
        for delay in delays:
            await asyncio.sleep(delay)
            found = await fetch(sid)
            if found is not None:
                async with database.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
                    await set_price(conn, sid, *found)
                return
        log.warning("the provider gave no price for message %s in time", sid)

    task = asyncio.ensure_future(hunt())
    _pricing.add(task)
    task.add_done_callback(_pricing.discard)


async def of_lead(conn: AsyncConnection, lead_id: str) -> list[dict[str, object]]:
    """The lead's texts, oldest first, for its page."""
    query = select(messages).where(messages.c.lead_id == lead_id).order_by(messages.c.created_at)
    return [dict(row._mapping) for row in await conn.execute(query)]
