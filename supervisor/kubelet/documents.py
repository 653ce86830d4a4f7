"""The kubelet API's documents, built from what the nodes know, as pure functions.

``/pods`` is a ``v1 PodList``. ``/stats/summary`` is a stats ``Summary`` and
``/metrics/resource`` the kubelet's resource metrics, each with the node and its pods
and only the figures SaladCloud really gives: it reports no CPU, memory, network or
filesystem usage of a container, so those fields are left out (metrics-server and
``kubectl top`` then show no figures for these pods instead of failing). What is
known is when pods and containers started, from the pods' status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

JSON = Mapping[str, Any]

_STREAMING_WHAT = {
    "exec": "run a command in a container (kubectl exec)",
    "attach": "attach to a running container (kubectl attach)",
    "port-forward": "forward a port to a pod (kubectl port-forward)",
    "run": "run a command in a container",
}


def streaming_refusal(action: str) -> str:
    """What exec, attach, port-forward and run are answered, for kubectl to print."""
    what = _STREAMING_WHAT.get(action, action)
    return (
        f"salad-vk: SaladCloud has no API to {what}; exec, attach, port-forward and run "
        "are not available on SaladCloud nodes. Read the container's output with kubectl "
        "logs; reach it from outside through SaladCloud's Container Gateway "
        "(salad.com/networking-* annotations)"
    )


def _obj(value: Any) -> JSON:
    return value if isinstance(value, Mapping) else {}


def pod_list(pods: Iterable[JSON]) -> dict[str, Any]:
    return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": list(pods)}


def _started(state: JSON) -> str | None:
    for kind in ("running", "terminated"):
        started = _obj(state.get(kind)).get("startedAt")
        if isinstance(started, str):
            return started
    return None


def _pod_stats(pod: JSON) -> dict[str, Any]:
    meta = _obj(pod.get("metadata"))
    status = _obj(pod.get("status"))
    started = {
        str(s.get("name")): _started(_obj(s.get("state")))
        for s in status.get("containerStatuses") or []
        if isinstance(s, Mapping)
    }
    containers = [
        {"name": name, "startTime": started.get(name)}
        for name in (
            str(_obj(c).get("name")) for c in _obj(pod.get("spec")).get("containers") or []
        )
    ]
    return {
        "podRef": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "startTime": status.get("startTime"),
        "containers": containers,
    }


def summary(node: str, pods: Iterable[JSON]) -> dict[str, Any]:
    """A stats ``Summary`` of ``node``: its pods and containers with their start times."""
    return {
        "node": {"nodeName": node, "systemContainers": [], "startTime": None},
        "pods": [_pod_stats(pod) for pod in pods],
    }


def _seconds(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class _ResourceMetrics(Collector):
    def __init__(self, pods: Sequence[JSON]) -> None:
        self._pods = pods

    def collect(self) -> Iterable[Metric]:
        started = GaugeMetricFamily(
            "container_start_time_seconds",
            "[STABLE] Start time of the container since unix epoch in seconds",
            labels=["container", "namespace", "pod"],
        )
        for pod in self._pods:
            meta = _obj(pod.get("metadata"))
            for status in _obj(pod.get("status")).get("containerStatuses") or []:
                at = _seconds(_started(_obj(_obj(status).get("state"))))
                if at is not None:
                    labels = [
                        str(_obj(status).get("name")),
                        str(meta.get("namespace")),
                        str(meta.get("name")),
                    ]
                    started.add_metric(labels, at)
        yield started
        error = GaugeMetricFamily(
            "resource_scrape_error",
            "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
        )
        error.add_metric([], 0.0)
        yield error


def resource_metrics(pods: Sequence[JSON]) -> bytes:
    """``/metrics/resource`` in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ResourceMetrics(pods))
    return generate_latest(registry)
