"""Prometheus metric families of the virtual nodes.

The supervisor owns the one ``CollectorRegistry`` of the process and builds one
``NodeMetrics`` on it; every node receives that object and writes its own series,
labelled with its node name. Nothing here is module-level: a test builds a fresh
registry and reads exactly what one node wrote.

Label values never carry secrets: ``operation`` is an API operation name from a
fixed set, ``status`` an HTTP status code or an error class name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _LeaseAgeCollector(Collector):
    """Seconds since each node's last successful lease renewal, computed at scrape time."""

    def __init__(self) -> None:
        self.last_renewal: dict[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "salad_vk_lease_renewal_age_seconds",
            "Seconds since the node's Lease was last renewed successfully.",
            labels=["node"],
        )
        now = time.monotonic()
        for node, at in sorted(self.last_renewal.items()):
            family.add_metric([node], now - at)
        yield family


class NodeMetrics:
    """Every per-node metric family, registered on the registry passed in."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.saladcloud_requests = Counter(
            "salad_vk_saladcloud_requests_total",
            "SaladCloud API requests by operation and outcome "
            "(HTTP status code, or the error class when no response arrived).",
            ["node", "operation", "status"],
            registry=registry,
        )
        self.saladcloud_request_duration = Histogram(
            "salad_vk_saladcloud_request_duration_seconds",
            "Latency of single SaladCloud API attempts.",
            ["operation"],
            buckets=_FAST,
            registry=registry,
        )
        self.saladcloud_rate_limited = Counter(
            "salad_vk_saladcloud_rate_limited_total",
            "SaladCloud responses with status 429 Too Many Requests.",
            ["node"],
            registry=registry,
        )
        self.saladcloud_retries = Counter(
            "salad_vk_saladcloud_retries_total",
            "SaladCloud requests retried, by operation and reason.",
            ["node", "operation", "reason"],
            registry=registry,
        )
        # The latency histograms are the process's, not each node's: per node, three
        # of them were 63,000 of the 87,000 lines of a 1,000-node page, and rendering
        # it cost a second of CPU at every scrape (docs/benchmarks.md). Which node is
        # held back shows in the per-node counters and the lease age.
        self.ratelimiter_wait = Histogram(
            "salad_vk_ratelimiter_wait_seconds",
            "Time a request waited for the per-API-key rate limiter.",
            ["priority"],
            buckets=_SLOW,
            registry=registry,
        )
        self.ratelimiter_waited = Counter(
            "salad_vk_ratelimiter_waited_seconds_total",
            "Seconds the node's requests spent waiting for its API key's budget, by priority"
            " (its rate: how much of the time the limit holds the node back).",
            ["node", "priority"],
            registry=registry,
        )
        self.lease_renewal_duration = Histogram(
            "salad_vk_lease_renewal_duration_seconds",
            "Latency of successful Lease renewals, every node's.",
            buckets=_FAST,
            registry=registry,
        )
        self.lease_renewal_failures = Counter(
            "salad_vk_lease_renewal_failures_total",
            "Lease renewal attempts that failed.",
            ["node"],
            registry=registry,
        )
        self._lease_age = _LeaseAgeCollector()
        registry.register(self._lease_age)
        self.pods = Gauge(
            "salad_vk_pods",
            "Pods bound to the node, by phase.",
            ["node", "phase"],
            registry=registry,
        )
        self.container_groups = Gauge(
            "salad_vk_container_groups",
            "Container groups in the node's project at the last list, by status.",
            ["node", "status"],
            registry=registry,
        )
        self.reconcile_duration = Histogram(
            "salad_vk_reconcile_duration_seconds",
            "Duration of one reconcile pass over all of a node's pods, every node's.",
            buckets=_SLOW,
            registry=registry,
        )
        self.pod_refusals = Counter(
            "salad_vk_pod_refusals_total",
            "Pods the node refused (they wait, Pending) or failed, by reason: pod specs it"
            " cannot run, groups SaladCloud refused, groups lost outside Kubernetes. Each"
            " pod counts once per reason, however often it is tried again.",
            ["node", "reason"],
            registry=registry,
        )
        self.saladcloud_up = Gauge(
            "salad_vk_saladcloud_up",
            "1 while the node's last SaladCloud call succeeded (reachable and key accepted).",
            ["node"],
            registry=registry,
        )
        self.kubernetes_requests = Counter(
            "salad_vk_kubernetes_requests_total",
            "Kubernetes API requests by verb, resource and HTTP status code.",
            ["node", "verb", "resource", "code"],
            registry=registry,
        )
        self.owed_deletions = Gauge(
            "salad_vk_owed_deletions",
            "Container-group deletions the node owes (their pod is gone) and SaladCloud has"
            " not confirmed yet; retried with backoff until it does.",
            ["node"],
            registry=registry,
        )
        self.orphans_deleted = Counter(
            "salad_vk_orphaned_groups_deleted_total",
            "Container groups deleted because no live pod owns them.",
            ["node"],
            registry=registry,
        )

    def lease_renewed(self, node: str, duration: float) -> None:
        self.lease_renewal_duration.observe(duration)
        self._lease_age.last_renewal[node] = time.monotonic()

    def forget_node(self, node: str) -> None:
        """Drop every series of a node that was removed from the config."""
        self._lease_age.last_renewal.pop(node, None)
        for family in (
            self.saladcloud_requests,
            self.saladcloud_rate_limited,
            self.saladcloud_retries,
            self.ratelimiter_waited,
            self.lease_renewal_failures,
            self.pods,
            self.container_groups,
            self.pod_refusals,
            self.saladcloud_up,
            self.orphans_deleted,
            self.owed_deletions,
            self.kubernetes_requests,
        ):
            _remove_node_series(family, node)


def _remove_node_series(family: Counter | Gauge | Histogram, node: str) -> None:
    # prometheus_client offers no "remove by one label"; walk the children it holds.
    names = list(family._labelnames)
    index = names.index("node")
    with family._lock:
        doomed = [key for key in family._metrics if key[index] == node]
    for key in doomed:
        family.remove(*key)
