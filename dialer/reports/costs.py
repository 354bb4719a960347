"""The cost and performance of the leads of a period: what they cost by source, campaign, landing page,
region and day, how fast visitors were called back, and how the managers answered.

Everything is aggregated in SQL (the same queries on SQLite and PostgreSQL), so the page costs two
statements whatever the number of leads. Prices are summed as whole hundred-thousandths (see
`dialer.reports.money`), and a leg whose price is not known yet is counted as pending, never as zero.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import geocoder
from sqlalchemy import Integer, Select, String, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from dialer.core.states import EndReason, LeadStatus, LegRole
from dialer.db.models import CallLeg, Lead, Manager
from dialer.reports.filters import LeadFilter, campaign, landing_page, source_label, where
from dialer.reports.money import MICRO, money, summed_micros

PERIODS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days", "custom": "Custom"}
CONNECTED = (LeadStatus.CONNECTED.value, LeadStatus.COMPLETED.value)
# Leads are grouped by the first digits of their number before geocoding: the geocoder works on
# prefixes anyway, and this keeps the work per distinct prefix rather than per lead.
REGION_PREFIX = 8


# the period -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime
    end: datetime
    zone: str

    @property
    def label(self) -> str:
        if self.name == "custom":
            last = (self.end - timedelta(days=1)).astimezone(ZoneInfo(self.zone)).date()
            return f"{self.start.astimezone(ZoneInfo(self.zone)).date()} – {last}"
        return PERIODS[self.name]


def period(name: str, now: datetime, zone: str, start: date | None = None, end: date | None = None) -> Period:
    """A period of whole days in `zone`; `custom` runs from `start` to `end` inclusive."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    if name == "custom" and start is not None and end is not None:
        first, last = start, end
    else:
        name = name if name in ("today", "7d", "30d") else "7d"
        first = today - timedelta(days={"today": 0, "7d": 6, "30d": 29}[name])
        last = today
    begin = datetime.combine(first, time(), tz)
    finish = datetime.combine(last + timedelta(days=1), time(), tz)
    return Period(name, begin, finish, zone)


# the report -----------------------------------------------------------------------------------------


@dataclass
class CostRow:
    key: str
    leads: int = 0
    calls: int = 0  # call requests (messages are leads too, but ring no one)
    connected: int = 0
    cost_micros: int = 0
    pending: int = 0

    @property
    def cost(self) -> Decimal:
        return money(self.cost_micros)

    @property
    def per_lead(self) -> Decimal | None:
        return (self.cost / self.leads).quantize(MICRO) if self.leads else None

    @property
    def per_connected(self) -> Decimal | None:
        return (self.cost / self.connected).quantize(MICRO) if self.connected else None

    @property
    def connection_rate(self) -> float | None:
        return self.connected / self.calls if self.calls else None

    def add(self, leads: int, calls: int | bool, connected: int | bool, micros: int, pending: int) -> None:
        self.leads += leads
        self.calls += calls
        self.connected += connected
        self.cost_micros += micros
        self.pending += pending


@dataclass
class ManagerRow:
    """A manager's calls: `talk_seconds` is the conversation (the visitor legs bridged to them that ended as
    one); `call_seconds` their own calls' time (whisper, hold and conversation); the cost is what the
    provider bills for both legs of their calls, with the legs still unpriced counted apart."""

    manager_id: int | None
    name: str
    rung: int
    answered: int
    accepted: int
    talk_seconds: int
    call_seconds: int = 0
    cost_micros: int = 0
    pending: int = 0

    @property
    def answer_rate(self) -> float | None:
        return self.accepted / self.rung if self.rung else None

    @property
    def cost(self) -> Decimal:
        return money(self.cost_micros)


@dataclass
class CostReport:
    period: Period
    units: list[str]
    total: CostRow
    missed: int
    unreachable: int
    by_source: list[CostRow]
    by_campaign: list[CostRow]
    by_landing: list[CostRow]
    by_region: list[CostRow]
    by_day: list[CostRow]
    managers: list[ManagerRow]
    p50: float | None
    p95: float | None
    waits: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def missed_rate(self) -> float | None:
        return self.missed / self.total.calls if self.total.calls else None

    @property
    def unreachable_rate(self) -> float | None:
        return self.unreachable / self.total.calls if self.total.calls else None

    @property
    def currency(self) -> str:
        return self.units[0] if len(self.units) == 1 else ("/".join(self.units) if self.units else "")


def _utc_quarter(session: AsyncSession) -> ColumnElement[Any]:
    """The UTC quarter-hour a lead came in, as "YYYY-MM-DD HH:q" (q = 0…3). Every time zone's offset is a
    whole number of quarter hours, so these group exactly into the days of any zone (`_days`)."""
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone("UTC", Lead.created_at)
        hour = func.to_char(utc, "YYYY-MM-DD HH24")
        minute = cast(func.extract("minute", utc), Integer)
    else:  # SQLite keeps UTC timestamps as ISO text
        hour = func.substr(Lead.created_at, 1, 13)
        minute = cast(func.substr(Lead.created_at, 15, 2), Integer)
    quarter: ColumnElement[Any] = hour.op("||")(":").op("||")(cast(minute // 15, String))
    return quarter


def _path(url: str | None) -> str:
    if not url:
        return "(unknown)"
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:200]
    return (parts.netloc + parts.path) or url[:200]


def _legs_per_lead(f: LeadFilter) -> Any:
    """Each selected lead's cost, pending legs, price units and when its visitor first answered: one pass
    over the legs of the leads `f` selects."""
    leads = where(select(Lead.id), f)
    return (
        select(
            CallLeg.lead_id.label("lead_id"),
            summed_micros(CallLeg.price).label("micros"),
            func.sum(case((CallLeg.price.is_(None), 1), else_=0)).label("pending"),
            func.min(CallLeg.price_unit).label("unit_lo"),
            func.max(CallLeg.price_unit).label("unit_hi"),
            func.min(case((_connected_visitor(), CallLeg.answered_at))).label("answered"),
        )
        .where(CallLeg.lead_id.in_(leads))
        .group_by(CallLeg.lead_id)
        .subquery()
    )


def _connected_visitor() -> ColumnElement[bool]:
    """A visitor's leg that was connected to the manager: ended as a conversation, or still going on (an
    answer that was never bridged, or a voicemail, is no connection)."""
    ended = or_(CallLeg.end_reason.is_(None), CallLeg.end_reason == EndReason.COMPLETED.value)
    return and_(CallLeg.role == LegRole.VISITOR.value, ended)


def _seconds_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


async def cost_report(session: AsyncSession, f: LeadFilter, p: Period) -> CostReport:
    """Everything on the cost page from two statements. The first builds one row per lead (its legs
    summed) once, as a materialized CTE, and groups it by each dimension in turn (UNION ALL), so only
    aggregates come back; the second sums each manager's legs, with the visitor legs bridged to them."""
    f = LeadFilter(site_ids=f.site_ids, site_id=f.site_id, source=f.source, campaign=f.campaign,
                   start=p.start, end=p.end)
    legs = _legs_per_lead(f)
    asked = func.coalesce(Lead.scheduled_for, Lead.created_at)
    per_lead = where(
        select(
            source_label().label("source"),
            campaign().label("campaign"),
            landing_page().label("landing"),
            _utc_quarter(session).label("day"),
            func.substr(Lead.phone, 1, REGION_PREFIX).label("prefix"),
            Lead.phone.label("phone"),
            Lead.status.label("status"),
            case((Lead.kind == "call", 1), else_=0).label("call"),
            case((Lead.status.in_(CONNECTED), 1), else_=0).label("connected"),
            func.coalesce(legs.c.micros, 0).label("micros"),
            func.coalesce(legs.c.pending, 0).label("pending"),
            legs.c.unit_lo.label("unit_lo"),
            legs.c.unit_hi.label("unit_hi"),
            func.round(_seconds_between(session, asked, legs.c.answered)).label("wait"),
        ).select_from(Lead).outerjoin(legs, legs.c.lead_id == Lead.id),
        f,
    ).cte("per_lead").prefix_with("MATERIALIZED")
    c = per_lead.c

    def by(name: str, key: Any) -> Select[*tuple[Any, ...]]:
        return (
            select(literal(name).label("dim"), cast(key, String).label("key"), func.min(c.phone), func.count(),
                   func.sum(c.call), func.sum(c.connected), func.sum(c.micros), func.sum(c.pending))
            .group_by(key)
        )

    dims = ("source", "campaign", "landing", "day", "prefix", "status", "unit_lo", "unit_hi", "wait")
    query = union_all(*(by(name, c[name]) for name in dims))
    groups: dict[str, dict[str | None, CostRow]] = {name: {} for name in dims}
    samples: dict[str, str] = {}
    for dim, key, phone, *nums in await session.execute(query):
        groups[dim][key] = CostRow(key or "", *(int(n or 0) for n in nums))
        if dim == "prefix":
            samples[key] = phone
    total = CostRow("all")
    for row in groups["status"].values():
        total.add(row.leads, row.calls, row.connected, row.cost_micros, row.pending)
    by_source, by_campaign, by_landing, by_region = _rows(), _rows(), _rows(), _rows()
    for merged, dim, name_of in (
        (by_source, "source", lambda k: k or "direct"),
        (by_campaign, "campaign", lambda k: k or "(none)"),
        (by_landing, "landing", _path),
        (by_region, "prefix", lambda k: _region_of(k, samples[k]) if k else "unknown"),
    ):
        for key, row in groups[dim].items():
            merged[name_of(key)].add(row.leads, row.calls, row.connected, row.cost_micros, row.pending)
    statuses = groups["status"]
    # The waits come back as a histogram in whole seconds: percentiles need no row per lead.
    histogram = sorted((float(k), row.leads) for k, row in groups["wait"].items() if k is not None)
    units = {k for d in ("unit_lo", "unit_hi") for k in groups[d] if k}
    return CostReport(
        period=p,
        units=sorted(units),
        total=total,
        missed=statuses[LeadStatus.MISSED.value].leads if LeadStatus.MISSED.value in statuses else 0,
        unreachable=statuses[LeadStatus.UNREACHABLE.value].leads if LeadStatus.UNREACHABLE.value in statuses else 0,
        by_source=_ranked(by_source),
        by_campaign=_ranked(by_campaign),
        by_landing=_ranked(by_landing),
        by_region=_ranked(by_region),
        by_day=_days({k: v for k, v in groups["day"].items() if k}, p),
        managers=await _managers(session, f),
        p50=_histogram_percentile(histogram, 50),
        p95=_histogram_percentile(histogram, 95),
        waits=sum(n for _, n in histogram),
    )


def _histogram_percentile(histogram: list[tuple[float, int]], pct: float) -> float | None:
    """Nearest-rank percentile of values given as sorted (value, count) pairs."""
    total = sum(n for _, n in histogram)
    if not total:
        return None
    rank, seen = max(1, -(-total * pct // 100)), 0
    for value, n in histogram:
        seen += n
        if seen >= rank:
            return max(0.0, value)
    return histogram[-1][0]


def _rows() -> defaultdict[str, CostRow]:
    rows: defaultdict[str, CostRow] = defaultdict(lambda: CostRow(""))
    return rows


def _ranked(rows: dict[str, CostRow]) -> list[CostRow]:
    for key, row in rows.items():
        row.key = key
    return sorted(rows.values(), key=lambda r: (-r.cost_micros, -r.leads, r.key))


def _days(quarters: dict[str, CostRow], p: Period) -> list[CostRow]:
    """The UTC quarter-hours' rows summed into the days of the period's zone, every day of it shown."""
    tz, utc = ZoneInfo(p.zone), ZoneInfo("UTC")
    rows: dict[str, CostRow] = {}
    for key, got in quarters.items():
        hour, _, quarter = key.rpartition(":")
        try:
            start = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=utc) + timedelta(minutes=15 * int(quarter))
        except ValueError:
            continue
        local = start.astimezone(tz).date().isoformat()
        rows.setdefault(local, CostRow(local)).add(got.leads, got.calls, got.connected, got.cost_micros, got.pending)
    out, day = [], p.start.astimezone(tz).date()
    while datetime.combine(day, time(), tz) < p.end:
        out.append(rows.get(day.isoformat()) or CostRow(day.isoformat()))
        day += timedelta(days=1)
    return out


_REGIONS: dict[str, str] = {}


def _region_of(prefix: str, phone: str) -> str:
    """The region of every number starting with `prefix`, read from one of them (cached: it never changes)."""
    found = _REGIONS.get(prefix)
    if found is None:
        if len(_REGIONS) > 200_000:
            _REGIONS.clear()
        found = _REGIONS[prefix] = _region(phone)
    return found


def _region(phone: str) -> str:
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return "unknown"
    country = geocoder.country_name_for_number(number, "en")
    place = geocoder.description_for_number(number, "en")
    if place and country and place != country:
        return f"{place}, {country}"
    return place or country or "unknown"


def _bridged_visitors(f: LeadFilter) -> Any:
    """Per manager leg, the visitor legs bridged to it: their conversation time (a leg that ended
    `completed` was a conversation: an unbridged one ends `canceled`, a machine `voicemail`), their price
    and how many are unpriced."""
    talked = case((CallLeg.end_reason == EndReason.COMPLETED.value, func.coalesce(CallLeg.duration, 0)), else_=0)
    return (
        select(
            CallLeg.bridged_to.label("manager_leg"),
            func.sum(talked).label("talk"),
            summed_micros(CallLeg.price).label("micros"),
            func.sum(case((CallLeg.price.is_(None), 1), else_=0)).label("pending"),
        )
        .where(CallLeg.role == LegRole.VISITOR.value, CallLeg.bridged_to.is_not(None),
               CallLeg.lead_id.in_(where(select(Lead.id), f)))
        .group_by(CallLeg.bridged_to)
        .subquery()
    )


async def _managers(session: AsyncSession, f: LeadFilter) -> list[ManagerRow]:
    visitors = _bridged_visitors(f)
    answered = case((CallLeg.answered_at.is_not(None), 1), else_=0)
    accepted = case((CallLeg.accepted.is_(True), 1), else_=0)
    unpriced = case((CallLeg.price.is_(None), 1), else_=0)
    query = where(
        select(CallLeg.manager_id, func.count(), func.sum(answered), func.sum(accepted),
               func.sum(func.coalesce(visitors.c.talk, 0)), func.sum(func.coalesce(CallLeg.duration, 0)),
               summed_micros(CallLeg.price) + func.sum(func.coalesce(visitors.c.micros, 0)),
               func.sum(unpriced) + func.sum(func.coalesce(visitors.c.pending, 0)))
        .select_from(CallLeg)
        .join(Lead, Lead.id == CallLeg.lead_id)
        .outerjoin(visitors, visitors.c.manager_leg == CallLeg.id)
        .where(CallLeg.role == LegRole.MANAGER.value),
        f,
    ).group_by(CallLeg.manager_id)
    rows = list(await session.execute(query))
    ids = {r[0] for r in rows if r[0] is not None}
    names = dict((await session.execute(select(Manager.id, Manager.name).where(Manager.id.in_(ids or {-1})))).all())
    out = [
        ManagerRow(mid, names.get(mid, "(removed)") if mid else "(removed)", *(int(v or 0) for v in figures))
        for mid, *figures in rows
    ]
    return sorted(out, key=lambda m: (-m.accepted, m.name))
