"""/pods, /stats/summary and /metrics/resource: well-formed, and no figure invented."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from supervisor.kubelet.documents import pod_list, resource_metrics, summary

RUNNING: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
    "spec": {"containers": [{"name": "main"}]},
    "status": {
        "startTime": "2026-04-03T12:00:00Z",
        "containerStatuses": [
            {"name": "main", "state": {"running": {"startedAt": "2026-04-03T12:00:05Z"}}}
        ],
    },
}
PENDING: dict[str, Any] = {
    "metadata": {"name": "queued", "namespace": "shop", "uid": "u-2"},
    "spec": {"containers": [{"name": "main"}]},
    "status": {},
}


def test_pods_is_a_v1_pod_list_of_the_pods_as_they_are() -> None:
    assert pod_list([RUNNING]) == {
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {},
        "items": [RUNNING],
    }


def test_the_summary_has_the_node_and_its_pods_with_start_times_only() -> None:
    document = summary("salad-a", [RUNNING, PENDING])

    assert document["node"] == {"nodeName": "salad-a", "systemContainers": [], "startTime": None}
    assert document["pods"] == [
        {
            "podRef": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "startTime": "2026-04-03T12:00:00Z",
            "containers": [{"name": "main", "startTime": "2026-04-03T12:00:05Z"}],
        },
        {
            "podRef": {"name": "queued", "namespace": "shop", "uid": "u-2"},
            "startTime": None,
            "containers": [{"name": "main", "startTime": None}],
        },
    ]
    usage = {"cpu", "memory", "network", "fs", "volume", "ephemeral-storage", "rlimit", "swap"}
    assert not usage & set(document["node"]), "SaladCloud reports no node usage"
    assert not usage & set(document["pods"][0]), "nor any container usage"


def test_resource_metrics_parse_and_carry_only_start_times() -> None:
    families = {
        family.name: family
        for family in text_string_to_metric_families(resource_metrics([RUNNING, PENDING]).decode())
    }

    assert set(families) == {"container_start_time_seconds", "resource_scrape_error"}
    [started] = families["container_start_time_seconds"].samples
    assert started.labels == {"container": "main", "namespace": "shop", "pod": "web"}
    assert started.value == 1775217605.0
    assert families["resource_scrape_error"].samples[0].value == 0.0
