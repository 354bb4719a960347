"""What the dashboard's pages say, as an owner reads them: visitor names, currencies beside costs,
denominators beside rates, numbers on the charts without hovering, one named time zone per page, and
when a scheduled lead will be called."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from server.dashboard.templating import step_label
from tests.server.dashboard.conftest import OWNER, Dash
from tests.server.dashboard.test_costs import seed


@pytest.mark.sqlite_only
def test_the_leads_list_names_the_visitor_and_costs_carry_their_currency(dash: Dash) -> None:
    async def named() -> str:
        lead = await dash.world.submit("+48501234599", name="Zofia Nowak")
        return lead.id

    lead_id = dash.run(named)
    seed(dash)
    assert dash.login(OWNER).status_code == 303
    page = dash.client.get("/dashboard/leads").text
    row = re.search(rf'<tr data-lead="{lead_id}">(.*?)</tr>', page, re.S)
    assert row and "Zofia Nowak" in row.group(1)
    assert re.search(r"data-cost=\"0\.10500+\">0\.1050 USD<", page), "a cost says its currency"
    assert "Times in UTC." in page  # two sites in different zones: one zone for the page, named


@pytest.mark.sqlite_only
def test_costs_show_currency_denominators_and_chart_numbers(dash: Dash) -> None:
    seed(dash)
    assert dash.login(OWNER).status_code == 303
    page = dash.client.get(f"/dashboard/costs?period=7d&site={dash.world.site.id}").text
    assert '<span class="sub" data-currency>USD</span>' in page
    assert "Cost (USD)" in page and "Per lead (USD)" in page
    rates = re.findall(r"<td class=\"num\" data-rate>([^<]*)</td>", page)
    assert rates and all(re.fullmatch(r"(\d+\.\d%|—) \(\d+ of \d+\)|— \(none yet\)", r) for r in rates), rates
    assert "100.0% (1 of 1)" in rates  # Google Ads: connected 1 of 1 call request
    # The leads-per-day chart prints each day's count above its bar, not only in a hover title.
    chart = page[page.index("Leads per day"):page.index("Cost by traffic source")]
    assert re.search(r'<text class="value"[^>]*>3</text>', chart), chart[:500]
    assert "UTC days" not in page and "days in Europe/Warsaw time" in page


@pytest.mark.sqlite_only
def test_the_queue_says_when_a_scheduled_lead_will_be_called(dash: Dash) -> None:
    async def scheduled() -> str:
        lead = await dash.world.submit("+48501234598", scheduled_for=dash.world.clock.now() + timedelta(hours=3))
        return lead.id

    lead_id = dash.run(scheduled)
    assert dash.login(OWNER).status_code == 303
    board = dash.client.get(f"/dashboard/?site={dash.world.site.id}").text
    queue = board[board.index('id="queue"'):board.index('id="unhandled"')]
    row = re.search(rf'<tr data-lead="{lead_id}">(.*?)</tr>', queue, re.S)
    assert row and re.search(r"<span data-due>calls at \d\d:\d\d</span>", row.group(1)), queue
    assert "Times in Europe/Warsaw time." in board


def test_call_steps_read_as_people() -> None:
    names = {3: "Casey"}
    assert step_label("a1:m3", names) == "Attempt 1, manager Casey"
    assert step_label("a2:v:m3", names) == "Attempt 2, the visitor (for Casey)"
    assert step_label("a1:m9", names) == "Attempt 1, manager #9"


def test_leads_per_day_are_days_of_the_pages_zone(dash: Dash) -> None:
    """23:50 UTC on 1 November is 2 November in Warsaw, 5:20 in Kolkata (a half-hour offset) likewise."""
    from datetime import datetime

    from dialer.reports.costs import cost_report, period
    from dialer.reports.filters import LeadFilter
    from tests.server.dashboard.test_costs import _lead

    late = datetime.fromisoformat("2026-11-01T23:50:00+00:00")

    async def go() -> dict[str, list[tuple[str, int]]]:
        async with dash.world.runtime.sessions() as session, session.begin():
            session.add(_lead(dash.world.site.id, 0, created_at=late, updated_at=late))
        out = {}
        async with dash.world.runtime.sessions() as session:
            for zone in ("Europe/Warsaw", "Asia/Kolkata", "America/New_York"):
                p = period("7d", dash.world.clock.now(), zone)
                report = await cost_report(session, LeadFilter(site_ids=frozenset({dash.world.site.id})), p)
                out[zone] = [(d.key, d.leads) for d in report.by_day if d.leads]
        return out

    days = dash.run(go)
    assert days == {"Europe/Warsaw": [("2026-11-02", 1)], "Asia/Kolkata": [("2026-11-02", 1)],
                    "America/New_York": [("2026-11-01", 1)]}
