"""The database tables: site, manager, lead, call leg and lead event (the timeline)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dialer.core.states import TERMINAL, LeadStatus

# Lead statuses in which a call request is still being handled (neither over nor a message's RECEIVED).
ACTIVE_CALL_STATUSES = tuple(sorted(s.value for s in LeadStatus if s not in TERMINAL and s is not LeadStatus.RECEIVED))
ONE_ACTIVE_WHERE = (
    "one_per_number AND kind = 'call' AND status IN (" + ", ".join(f"'{s}'" for s in ACTIVE_CALL_STATUSES) + ")"
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on every database: stored in UTC, read back with tzinfo=UTC.

    (SQLite keeps no offset, so without this it would hand back naive datetimes.)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


def table_of(model: type[Base]) -> Table:
    """A model's table, typed as the `Table` it is (for Core statements)."""
    return cast(Table, model.__table__)


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    country: Mapped[str] = mapped_column(String(2), default="US")
    caller_id: Mapped[str | None] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    consent_required: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_text: Mapped[str | None] = mapped_column(Text)
    recording: Mapped[bool] = mapped_column(Boolean, default=False)
    routing: Mapped[str] = mapped_column(String(16), default="sequential")
    # Numbers from any country are accepted (used by the demo, whose calls are simulated).
    any_country: Mapped[bool] = mapped_column(Boolean, default=False)
    origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]

    managers: Mapped[list[Manager]] = relationship(
        back_populates="site", lazy="raise", order_by="Manager.position"
    )


class Manager(Base):
    __tablename__ = "managers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    working_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The lead this manager is being rung for or talking on; claimed with a conditional update so a
    # manager is never rung for two leads at once, whichever process asks.
    busy_lead_id: Mapped[str | None] = mapped_column(String(32))

    site: Mapped[Site] = relationship(back_populates="managers", lazy="raise")


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_due", "wake_at"),
        Index("ix_leads_site_created", "site_id", "created_at"),
        Index("ix_leads_created", "created_at"),  # the dashboard's newest-first list across sites
        Index("ix_leads_site_status", "site_id", "status"),  # the live board: in flight, queued, missed
        # One active call request per number and site, for the leads intake wrote under that rule: the
        # database refuses the second however many processes race (dialer/protection/screen.py).
        Index(
            "uq_leads_one_active_number",
            "site_id",
            "phone",
            unique=True,
            sqlite_where=text(ONE_ACTIVE_WHERE),
            postgresql_where=text(ONE_ACTIVE_WHERE),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="call")
    status: Mapped[str] = mapped_column(String(24))
    version: Mapped[int] = mapped_column(Integer, default=0)
    token_hash: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    scheduled_for: Mapped[datetime | None]
    wake_at: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # Offered to this manager first (a returning visitor's last manager, or "call back now").
    preferred_manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id", ondelete="SET NULL"))
    confirmed_at: Mapped[datetime | None]  # the visitor was sent the scheduled time
    reminded_at: Mapped[datetime | None]  # the visitor was reminded shortly before it
    handled_at: Mapped[datetime | None]  # a missed lead or a message someone took care of
    handled_by: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(Text)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Written by intake when the site allows one active request per number (uq_leads_one_active_number).
    one_per_number: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    visitor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    page_url: Mapped[str | None] = mapped_column(Text)
    referrer: Mapped[str | None] = mapped_column(Text)
    utm: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    legs: Mapped[list[CallLeg]] = relationship(lazy="raise", order_by="CallLeg.created_at")

    # Optimistic versioning: every update says which version it read, and fails if another wrote since.
    __mapper_args__ = {"version_id_col": version}


class CallLeg(Base):
    """One telephone call placed for a lead: a manager being rung, or the visitor being dialed."""

    __tablename__ = "call_legs"
    __table_args__ = (UniqueConstraint("lead_id", "step", name="uq_call_legs_step"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    # "a1:m3" is attempt 1, manager 3; "a1:v" the visitor in attempt 1. Unique per lead: a step is
    # written before it is dialed, so a restart can never dial the same step twice.
    step: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id", ondelete="SET NULL"))
    to_number: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    end_reason: Mapped[str | None] = mapped_column(String(32))
    end_detail: Mapped[str | None] = mapped_column(Text)  # the provider's words, e.g. why it refused
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)  # a manager pressed 1
    bridged_to: Mapped[str | None] = mapped_column(String(32))  # the manager leg a visitor leg joins
    provider_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 5))
    price_unit: Mapped[str | None] = mapped_column(String(3))
    recording_url: Mapped[str | None] = mapped_column(Text)
    # Who took the leg to dial, and when (`dialer/engine/dialing.py`): a conditional update sets them,
    # committed before the provider is asked, so that only one engine ever dials a step.
    dial_claimed_at: Mapped[datetime | None]
    dial_claimed_by: Mapped[str | None] = mapped_column(String(64))
    # When the provider starts (or, until it says so, is expected to start) placing the call: the call
    # pacer's slot, then Twilio's `queue_time`, then its `initiated` callback. The manager's ring deadline
    # counts from here, not from the decision to ring (`dialer/engine/pacing.py`).
    starts_at: Mapped[datetime | None]
    # When the engine asked the provider about this call because its callbacks did not come in time
    # (a live call is never hung up on a missing callback alone).
    checked_at: Mapped[datetime | None]


class LeadEvent(Base):
    """One line of a lead's timeline."""

    __tablename__ = "lead_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(24))
    leg_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class RateLimitCounter(Base):
    """One fixed window of one rate limit (used when no Redis is configured), so limits hold across
    processes. The key is a keyed hash: neither IP addresses nor phone numbers are stored here."""

    __tablename__ = "rate_limits"
    __table_args__ = (Index("ix_rate_limits_expires", "expires_at"),)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime]


class CallPace(Base):
    """The call pacer's next free slot for one provider account (used when no Redis is configured): every
    process takes its slots from this row, so together they never start calls faster than the account's
    calls per second (`dialer/engine/pacing.py`)."""

    __tablename__ = "call_pace"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[datetime]


class TextMessage(Base):
    """One text message to a visitor: what was sent (kind), from which sender, how it went (`status`:
    sending, queued, sent, delivered, undelivered, failed, refused, opted_out), the provider's id, error
    and price. The lead's page shows them; delivery callbacks move `status` forward only."""

    __tablename__ = "text_messages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # confirm | reminder | missed | unreachable
    sender: Mapped[str | None] = mapped_column(String(64))  # a number or a Messaging Service SID
    status: Mapped[str] = mapped_column(String(16))
    provider_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    error_code: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal | None] = mapped_column(Numeric(12, 5))
    price_unit: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProviderJob(Base):
    """Work to ask of the provider later, kept so that a restart loses none of it: a call's or a text's
    price, which Twilio fills in a while after the end, and a recording whose callback did not come. Any
    engine takes a due job with a claim that lapses (`dialer/engine/jobs.py`)."""

    __tablename__ = "provider_jobs"
    __table_args__ = (
        UniqueConstraint("kind", "subject", name="uq_provider_jobs_subject"),
        Index("ix_provider_jobs_due", "done_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # call_price | text_price | recording
    # The provider's id of the call or message (a recording's: the call it is kept on, the manager's)
    subject: Mapped[str] = mapped_column(String(64))
    leg_id: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class SmsOptOut(Base):
    """A number that replied STOP (or that the provider says did): no text goes to it until it replies
    START."""

    __tablename__ = "sms_opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    at: Mapped[datetime]
    keyword: Mapped[str] = mapped_column(String(16))


class SiteNotice(Base):
    """Something the site's owner must be told (a daily cap was reached): shown on the dashboard."""

    __tablename__ = "site_notices"
    __table_args__ = (UniqueConstraint("site_id", "kind", "day", name="uq_site_notices_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    day: Mapped[str] = mapped_column(String(10))  # the site's local date, YYYY-MM-DD
    at: Mapped[datetime]
    detail: Mapped[str] = mapped_column(Text, default="")
    seen_at: Mapped[datetime | None]


class User(Base):
    """Someone who signs in to the dashboard: an `owner` sees everything, a `manager` their sites' leads."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class UserSite(Base):
    """A user's membership of a site, and which of that site's managers they are (for "call back now")."""

    __tablename__ = "user_sites"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("managers.id", ondelete="SET NULL"))


class AuditLog(Base):
    """Who changed what, when: every settings change and every sign-in attempt."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_action_target_at", "action", "target", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(254))  # the email as typed: kept when a user is removed
    action: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    target: Mapped[str] = mapped_column(String(254), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))


class DashboardSession(Base):
    """One signed-in browser. The cookie holds a random token; the table keeps only its SHA-256, so a copy
    of the database signs nobody in. Deleting the row ends the session (sign out, sign out everywhere, a
    removed user); `password_mark` ends it when the user's password changes by any path."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    password_mark: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class HeldEvent(Base):
    """A provider's report on a leg that could not be applied when it came (the database away, a step
    that kept failing): kept here, and applied later by whichever engine gets to it first (the step that
    applies it deletes it, in its own transaction)."""

    __tablename__ = "held_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[str | None] = mapped_column(String(32))  # None: not known yet when it was held
    leg_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)  # `dialer/core/event_codec.py`
    reason: Mapped[str] = mapped_column(Text, default="")  # the error it met (its type: no parameters)
    held_at: Mapped[datetime]
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(index=True)
