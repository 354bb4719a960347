"""Cost figures from call legs with known prices, rung-but-unanswered legs and legs still unpriced, as
the page shows them and as the CSV exports them."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal

from dialer.db.models import CallLeg, Lead, LeadEvent
from dialer.reports.costs import _histogram_percentile, cost_report, period
from dialer.reports.filters import LeadFilter
from tests.server.dashboard.conftest import OWNER, Dash

T0 = datetime.fromisoformat("2026-11-02T10:00:00+00:00")  # the world's clock starts at 12:00 UTC that day


def _lead(site_id: int, n: int, **fields: object) -> Lead:
    base = dict(site_id=site_id, kind="call", status="completed", version=1, token_hash="x" * 64,
                phone="+48501234567", timezone="Europe/Warsaw", attempt=1, utm={}, source={"label": "direct"},
                created_at=T0 + timedelta(minutes=n), updated_at=T0 + timedelta(minutes=n))
    base.update(fields)
    return Lead(**base)  # type: ignore[arg-type]


def _leg(lead: Lead, step: str, role: str, manager_id: int | None, *, after: int, answered: int | None,
         duration: int | None, price: str | None, accepted: bool = False, reason: str = "completed",
         **extra: object) -> CallLeg:
    created = lead.created_at + timedelta(seconds=after)
    return CallLeg(lead_id=lead.id, step=step, role=role, manager_id=manager_id, to_number="+12025550101",
                   **extra,  # type: ignore[arg-type]
                   status="ended", end_reason=reason, accepted=accepted, created_at=created,
                   answered_at=created + timedelta(seconds=answered) if answered is not None else None,
                   ended_at=created + timedelta(seconds=(answered or 20) + (duration or 0)), duration=duration,
                   price=Decimal(price) if price is not None else None, price_unit="USD" if price else None)


def seed(dash: Dash) -> dict[str, str]:
    """Three leads of the shop, one of the other site:

    - won (Google Ads, campaign winter): M1 rang 20 s unanswered (price 0), M2 pressed 1 and talked 65 s
      (0.07), the visitor answered after 5 s and talked 60 s (0.035).
    - missed (direct): M1 unanswered (0), M2 unanswered, price not reported yet.
    - a message: no call.
    - other site's lead: 1.00, which the shop's figures must not include.
    """
    world = dash.world

    async def go() -> dict[str, str]:
        async with world.runtime.sessions() as session, session.begin():
            m1, m2 = await _managers(session, world.site.id)
            won = _lead(world.site.id, 0, utm={"campaign": "winter", "source": "google", "medium": "cpc"},
                        source={"label": "Google Ads", "landing_page": "https://shop.example/boots?gclid=1"},
                        page_url="https://shop.example/boots?gclid=1")
            missed = _lead(world.site.id, 5, status="missed", phone="+442071234567")
            note = _lead(world.site.id, 6, kind="message", status="received", message="call me")
            other = _lead(dash.other.id, 7, phone="+12025550123")
            session.add_all([won, missed, note, other])
            await session.flush()
            session.add_all([
                _leg(won, "a1:m1", "manager", m1, after=0, answered=None, duration=None, price="0",
                     reason="no_answer"),
                _leg(won, "a1:m2", "manager", m2, after=21, answered=4, duration=65, price="0.07",
                     accepted=True, id="won-m2"),
                _leg(won, "a1:v", "visitor", None, after=30, answered=5, duration=60, price="0.035",
                     bridged_to="won-m2"),
                _leg(missed, "a1:m1", "manager", m1, after=0, answered=None, duration=None, price="0",
                     reason="no_answer"),
                _leg(missed, "a1:m2", "manager", m2, after=21, answered=None, duration=None, price=None,
                     reason="no_answer"),
                _leg(other, "a1:v", "visitor", None, after=0, answered=3, duration=600, price="1.00"),
            ])
            session.add(LeadEvent(lead_id=won.id, at=won.created_at, kind="status", status="queued",
                                  detail="request received"))
            return {"won": won.id, "missed": missed.id, "note": note.id, "other": other.id}

    return dash.run(go)


async def _managers(session, site_id: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from dialer.sites.lookup import active_managers

    managers = await active_managers(session, site_id)
    return managers[0].id, managers[1].id


def test_the_cost_report_counts_known_prices_and_keeps_pending_legs_apart(dash: Dash) -> None:
    seed(dash)

    async def report():  # type: ignore[no-untyped-def]
        async with dash.world.runtime.sessions() as session:
            p = period("today", dash.world.clock.now(), "Europe/Warsaw")
            return await cost_report(session, LeadFilter(site_id=dash.world.site.id), p)

    r = dash.run(report)
    assert (r.total.leads, r.total.calls, r.total.connected) == (3, 2, 1)
    assert r.total.cost == Decimal("0.10500") and r.total.pending == 1
    assert r.total.per_lead == Decimal("0.03500") and r.total.per_connected == Decimal("0.10500")
    assert r.total.connection_rate == 0.5 and r.missed_rate == 0.5 and r.unreachable_rate == 0
    assert r.p50 == 35 and r.p95 == 35  # the visitor answered 35 s after the request
    sources = {row.key: row for row in r.by_source}
    assert sources["Google Ads"].cost == Decimal("0.10500") and sources["direct"].pending == 1
    assert {row.key: row.leads for row in r.by_campaign} == {"winter": 1, "(none)": 2}
    assert [row.key for row in r.by_landing][0] == "shop.example/boots"
    regions = {row.key for row in r.by_region}
    assert "London, United Kingdom" in regions and "Poland" in regions
    managers = {m.name: m for m in r.managers}
    assert (managers["M1"].rung, managers["M1"].accepted, managers["M1"].answer_rate) == (2, 0, 0)
    # M2's talk is the conversation (the visitor's 60 s), not their whole call; the cost is both legs'.
    assert (managers["M2"].rung, managers["M2"].accepted, managers["M2"].talk_seconds) == (2, 1, 60)
    assert (managers["M2"].call_seconds, managers["M2"].cost, managers["M2"].pending) == (65, Decimal("0.10500"), 1)
    assert (managers["M1"].talk_seconds, managers["M1"].cost, managers["M1"].pending) == (0, Decimal("0.00000"), 0)
    assert r.units == ["USD"]


def test_a_manager_who_pressed_1_and_left_before_the_bridge_is_credited_no_talk_but_billed(dash: Dash) -> None:
    """M1 pressed 1 and hung up while the visitor was being connected (the visitor's leg answered and ended
    unbridged: `canceled`); M2 took the lead next and talked 50 s."""
    world = dash.world

    async def go() -> None:
        async with world.runtime.sessions() as session, session.begin():
            m1, m2 = await _managers(session, world.site.id)
            lead = _lead(world.site.id, 0)
            session.add(lead)
            await session.flush()
            session.add_all([
                _leg(lead, "a1:m1", "manager", m1, after=0, answered=3, duration=30, price="0.014",
                     accepted=True, id="left-m1"),
                _leg(lead, "a1:v1", "visitor", None, after=20, answered=4, duration=3, price="0.035",
                     reason="canceled", bridged_to="left-m1"),
                _leg(lead, "a1:m2", "manager", m2, after=40, answered=3, duration=70, price="0.028",
                     accepted=True, id="left-m2"),
                _leg(lead, "a1:v2", "visitor", None, after=55, answered=4, duration=50, price=None,
                     bridged_to="left-m2"),
            ])

    dash.run(go)
    assert dash.login(OWNER).status_code == 303
    page = dash.client.get("/dashboard/costs", params={"period": "today", "site": str(world.site.id)}).text
    rows = dict(re.findall(r'<tr data-manager="(M\d)">(.*?)</tr>', page, re.S))
    cells = {name: dict(re.findall(r'data-(talk|call-time|cost)>([^<]*)<', row)) for name, row in rows.items()}
    assert cells["M1"] == {"talk": "0 s", "call-time": "30 s", "cost": "0.0490"}  # whisper and all, both legs
    assert cells["M2"]["talk"] == "50 s" and cells["M2"]["call-time"] == "1 min 10 s"
    assert cells["M2"]["cost"].startswith("0.0280") and "+1 pending" in rows["M2"]  # the visitor's price to come
    assert _figures(page)["cost"] == "0.0770"  # the total is every leg's price, as before


def _figures(html: str) -> dict[str, str]:
    return {k: re.sub(r"\s+", " ", v).strip() for k, v in re.findall(r'data-figure="(\w+)">([^<]*)<', html)}


def test_the_cost_page_shows_the_figures_and_the_csv_matches_them(dash: Dash) -> None:
    seed(dash)
    assert dash.login(OWNER).status_code == 303
    page = dash.client.get("/dashboard/costs", params={"period": "today", "site": str(dash.world.site.id)})
    assert page.status_code == 200
    figures = _figures(page.text)
    assert figures["leads"] == "3" and figures["cost"] == "0.1050" and figures["per_lead"] == "0.0350"
    assert figures["per_connected"] == "0.1050" and figures["connection_rate"] == "50.0%"
    assert figures["pending"] == "1" and "1 call leg still without a price" in page.text
    assert "<svg" in page.text  # charts drawn on the server

    exported = dash.client.get("/dashboard/costs.csv", params={"period": "today", "site": str(dash.world.site.id)})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    total = next(r for r in rows if r["dimension"] == "total")
    assert (total["leads"], total["cost"], total["cost_per_lead"], total["cost_per_connected"]) == (
        figures["leads"], figures["cost"], figures["per_lead"], figures["per_connected"])
    assert total["connection_rate"] == figures["connection_rate"] and total["legs_price_pending"] == "1"
    # Every row of every table on the page is in the CSV with the same numbers.
    for dimension in ("source", "campaign", "landing", "region"):
        table = re.search(rf'data-dimension="{dimension}">(.*?)</table>', page.text, re.S)
        assert table
        # A rate is shown with its denominator beside it ("50.0% (1 of 2)"); the CSV has the rate alone.
        shown = {key: [cell.split(" (")[0] for cell in re.findall(r'<td class="num"[^>]*>([^<]*)</td>', cells)]
                 for key, cells in re.findall(r'<tr data-key="([^"]*)">(.*?)</tr>', table.group(1), re.S)}
        exported_rows = {r["key"]: [r["leads"], r["connected"], r["connection_rate"], r["cost"], r["cost_per_lead"],
                                    r["cost_per_connected"], r["legs_price_pending"]]
                         for r in rows if r["dimension"] == dimension}
        assert {k.replace("&amp;", "&"): v for k, v in shown.items()} == exported_rows


def test_the_leads_csv_matches_the_leads_page(dash: Dash) -> None:
    ids = seed(dash)
    assert dash.login(OWNER).status_code == 303
    page = dash.client.get("/dashboard/leads").text
    shown = dict(re.findall(r'<tr data-lead="(\w+)">.*?data-cost="([^"]+)"', page, re.S))
    assert set(shown) == set(ids.values())
    assert 'class="tag" title="price not known yet">+1 pending' in page
    rows = list(csv.DictReader(io.StringIO(dash.client.get("/dashboard/leads.csv").text)))
    assert {r["id"]: r["cost"] for r in rows} == shown
    assert [r["id"] for r in rows] == list(shown)  # same order: newest first
    missed = next(r for r in rows if r["id"] == ids["missed"])
    assert missed["status"] == "missed" and missed["cost_pending_legs"] == "1"
    filtered = list(csv.DictReader(io.StringIO(
        dash.client.get("/dashboard/leads.csv", params={"campaign": "winter"}).text)))
    assert [r["id"] for r in filtered] == [ids["won"]]


def test_a_leads_page_shows_legs_prices_pending_and_the_callers_region(dash: Dash) -> None:
    ids = seed(dash)
    assert dash.login(OWNER).status_code == 303
    page = dash.client.get(f"/dashboard/leads/{ids['missed']}").text
    assert "London" in page and "pending" in page and "Call back now" in page and "Mark handled" in page
    won = dash.client.get(f"/dashboard/leads/{ids['won']}").text
    assert "0.1050 USD" in won and "1 min 05 s" in won and "Google Ads" in won


def test_percentiles_of_waits_are_read_from_their_histogram() -> None:
    waits = [(5.0, 10), (12.0, 80), (40.0, 9), (300.0, 1)]  # 100 calls
    assert _histogram_percentile(waits, 50) == 12.0
    assert _histogram_percentile(waits, 95) == 40.0
    assert _histogram_percentile(waits, 100) == 300.0
    assert _histogram_percentile([], 50) is None
