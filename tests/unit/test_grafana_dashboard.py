"""The Grafana dashboard the chart ships: every metric it queries is one the operator exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kubemart.runtime import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "charts" / "kubemart" / "dashboards" / "kubemart.json"


def panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def test_every_metric_queried_exists() -> None:
    exposed = metrics.exposed_names()
    queried = {m for e in exprs() for m in re.findall(r"\bkubemart_[a-z_]+\b", e)}
    assert queried, "the dashboard queries our metrics"
    assert queried <= exposed, f"not exposed by the operator: {sorted(queried - exposed)}"


def test_every_exposed_metric_is_on_the_dashboard() -> None:
    queried = {m for e in exprs() for m in re.findall(r"\bkubemart_[a-z_]+\b", e)}
    families = {re.sub(r"_(total|bucket|sum|count)$", "", m) for m in metrics.exposed_names()}
    assert families <= {re.sub(r"_(total|bucket|sum|count)$", "", m) for m in queried}


@pytest.mark.parametrize(
    "title",
    [
        "Apps by phase",
        "Reconciles per second",
        "Helm subprocesses per second",
        "Operation duration",
        "Drift corrections",
        "Catalog writes per second",
        "Event loop lag",
        "HTTP connections",
    ],
)
def test_the_panels_admins_look_for(title: str) -> None:
    assert title in {p["title"] for p in panels()}


def test_panels_use_the_chosen_data_source_and_do_not_overlap() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "kubemart-operator"
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "job"]
    taken: set[tuple[int, int]] = set()
    for p in dashboard["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}"
            assert all('job=~"$job"' in t["expr"] for t in p["targets"]), p["title"]
        g = p["gridPos"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        assert g["x"] + g["w"] <= 24
        taken |= cells
