"""The Grafana dashboard charts only series the process really exports."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from nodes.metrics import NodeMetrics
from supervisor.metrics import ProcessMetrics

from .chart import CHART

DASHBOARD: dict[str, Any] = json.loads((CHART / "dashboards" / "salad-vk.json").read_text())
# Prometheus adds the target's namespace to every series a ServiceMonitor scrapes.
TARGET_LABELS = {"namespace"}


def exported() -> dict[str, set[str]]:
    """Every series name the process exports, with the labels it carries."""
    registry = CollectorRegistry()
    node_metrics = NodeMetrics(registry)
    families: list[Counter | Gauge | Histogram] = []
    for metrics in (node_metrics, ProcessMetrics(registry)):
        families += [
            m for m in vars(metrics).values() if isinstance(m, Counter | Gauge | Histogram)
        ]
    # Families computed at scrape time by collectors of their own show up in a scrape.
    node_metrics.lease_renewed("salad-a", 0.01)
    series: dict[str, set[str]] = {
        sample.name: set(sample.labels)
        for family in registry.collect()
        for sample in family.samples
    }
    # Labelled families have no series before their first use: take their label names.
    for family in families:
        labels = set(family._labelnames)
        for sample in family.describe():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
            for suffix in suffixes.get(sample.type, [""]):
                bucket = {"le"} if suffix == "_bucket" else set()
                series[sample.name + suffix] = labels | bucket
    return series


def expressions() -> list[str]:
    """Every PromQL query of the dashboard: its panels' and its variables'."""
    found = [v["query"] for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]
    for panel in DASHBOARD["panels"]:
        found += [target["expr"] for target in panel.get("targets", [])]
    return found


def test_every_series_on_the_dashboard_is_exported_with_the_labels_it_uses() -> None:
    series = exported()
    assert expressions()
    for expr in expressions():
        unknown = set(re.findall(r"salad_vk_\w+", expr)) - set(series)
        assert not unknown, f"{unknown} not exported (in {expr})"
        for name, matchers in re.findall(r"(salad_vk_\w+)\{([^}]*)\}", expr):
            used = set(re.findall(r"(\w+)\s*=~?", matchers))
            assert used <= series[name] | TARGET_LABELS, f"{name}: {used} in {expr}"
        for grouping, name in re.findall(r"by \(([^)]*)\) \((?:\w+\()?(salad_vk_\w+)", expr):
            labels = {label.strip() for label in grouping.split(",")}
            assert labels <= series[name] | TARGET_LABELS, f"{name}: by {labels} in {expr}"


def test_panels_have_unique_ids_and_query_the_chosen_data_source() -> None:
    panels = DASHBOARD["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert {"datasource", "namespace", "node"} <= variables
