"""The Grafana dashboard in examples/grafana/ parses, and every metric it queries is one Ringback serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dialer import metrics

pytestmark = pytest.mark.sqlite_only

DASHBOARD = Path(__file__).resolve().parent.parent / "examples" / "grafana" / "ringback.json"
METRIC = re.compile(r"\b(ringback_[a-z_]+)\b")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def served() -> set[str]:
    """Every series name a scrape can show (families with no sample yet included: their HELP is there)."""
    names = set()
    for family in text_string_to_metric_families(metrics.exposition({}).decode()):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_the_dashboard_parses_and_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Ringback" and dashboard["uid"]
    queried = {}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["targets"], panel
        for target in panel["targets"]:
            names = METRIC.findall(target["expr"])
            assert names, f"{panel['title']}: {target['expr']} queries no Ringback metric"
            for name in names:
                queried[name] = panel["title"]
    missing = {name: title for name, title in queried.items() if name not in served()}
    assert not missing, f"the dashboard queries metrics Ringback does not serve: {missing}"
    # And each metric Ringback serves is on the dashboard (a new one is added to both).
    families = {f.name for f in text_string_to_metric_families(metrics.exposition({}).decode())
                if f.name.startswith("ringback_") and not f.name.endswith("_created")}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in queried}
    assert families - shown == set()
