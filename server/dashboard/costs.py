"""Cost and performance: the page (numbers with SVG charts beside them) and the same table as CSV."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from dialer.reports.costs import CostReport, CostRow, cost_report, period
from server.dashboard import charts
from server.dashboard.leads import csv_response
from server.dashboard.scope import Scope, parse_day, scope
from server.dashboard.session import Ctx, runtime
from server.dashboard.templating import money, pct, render

DIMENSIONS = (("source", "Traffic source"), ("campaign", "Campaign"), ("landing", "Landing page"),
              ("region", "Region"))


async def _report(request: Request, ctx: Ctx) -> tuple[Scope, CostReport, dict[str, str]]:
    sc = await scope(request, ctx)
    q = request.query_params
    rt = runtime(request)
    p = period(q.get("period", "7d"), rt.clock.now(), sc.zone, parse_day(q.get("from"), "from"),
               parse_day(q.get("to"), "to"))
    async with rt.sessions() as session:
        report = await cost_report(session, sc.filter(), p)
    shown = {"site": str(sc.site.id) if sc.site else "", "period": p.name}
    if p.name == "custom":
        shown.update({"from": q.get("from", ""), "to": q.get("to", "")})
    return sc, report, shown


def tables(report: CostReport) -> list[tuple[str, str, list[CostRow]]]:
    return [
        ("source", "Traffic source", report.by_source),
        ("campaign", "Campaign", report.by_campaign),
        ("landing", "Landing page", report.by_landing),
        ("region", "Region", report.by_region),
    ]


async def costs_page(request: Request, ctx: Ctx) -> Response:
    sc, report, shown = await _report(request, ctx)
    unit = report.currency
    by_source = charts.hbars(
        [(r.key, float(r.cost), f"{money(r.cost)} {unit}") for r in report.by_source[:10]], "Cost by traffic source")
    by_day = charts.columns([(r.key, float(r.leads), str(r.leads)) for r in report.by_day], "Leads per day")
    answer = charts.hbars([(m.name, (m.answer_rate or 0) * 100, f"{pct(m.answer_rate)} ({m.accepted} of {m.rung})")
                           for m in report.managers], "Answer rate by manager")
    query = {k: v for k, v in shown.items() if v}
    return render(ctx, "costs.html", sc=sc, report=report, shown=shown, tables=tables(report),
                  chart_source=by_source, chart_days=by_day, chart_answer=answer,
                  csv_link="/dashboard/costs.csv?" + urlencode(query))


COLUMNS = ["dimension", "key", "leads", "call_requests", "connected", "connection_rate", "cost", "cost_per_lead",
           "cost_per_connected", "legs_price_pending", "currency"]


def _cells(dimension: str, row: CostRow, unit: str) -> list[str]:
    return [dimension, row.key, str(row.leads), str(row.calls), str(row.connected), pct(row.connection_rate),
            money(row.cost), money(row.per_lead), money(row.per_connected), str(row.pending), unit]


async def costs_csv(request: Request, ctx: Ctx) -> Response:
    _, report, _ = await _report(request, ctx)
    unit = report.currency
    rows = [COLUMNS, _cells("total", report.total, unit)]
    for dimension, _, table in tables(report):
        rows.extend(_cells(dimension, row, unit) for row in table)
    return csv_response(rows, f"costs-{report.period.name}.csv")
