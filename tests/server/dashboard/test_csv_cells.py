"""The leads export opened in a spreadsheet: a visitor's name or link that would start a formula, also
after a newline, a tab or spaces, is shown as text; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from server.dashboard.leads import text_cell
from tests.server.dashboard.conftest import OWNER, Dash

pytestmark = pytest.mark.sqlite_only  # the export's text, not how it was stored

HOSTILE = ["=HYPERLINK(\"http://x.example\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\n=1+1", "\t=1+1",
           "   =1+1", "\r\n+1", " \t@x", "\tplain", "\rplain", "＝1+1"]


@pytest.mark.parametrize("cell", HOSTILE)
def test_a_cell_that_could_start_a_formula_is_text(cell: str) -> None:
    assert text_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["+48501234567", "-0.10500", "12", "Anna", "a=b", "", " Anna"])
def test_other_cells_are_left_alone(cell: str) -> None:
    assert text_cell(cell) == cell


def test_the_export_neutralises_a_link_that_hides_a_formula_behind_a_newline(dash: Dash) -> None:
    created = dash.client.post("/api/v1/callbacks", json={"site": "shop", "phone": "+48501234567",
                                                          "page_url": "\n=HYPERLINK(\"http://evil.example\")"})
    assert created.status_code == 201, created.text
    assert dash.login(OWNER).status_code == 303
    (row,) = csv.DictReader(io.StringIO(dash.client.get("/dashboard/leads.csv").text))
    assert row["page_url"].startswith("'\n=") and row["phone"] == "+48501234567"
