"""Metric families of the kubelet API, on the process's one registry.

SaladCloud calls made for logs are counted where every SaladCloud call is:
``salad_vk_saladcloud_requests_total{operation="query_log_entries"}`` (per node) and
``salad_vk_ratelimiter_wait_seconds{priority="log"}``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class KubeletMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "salad_vk_kubelet_requests_total",
            "Requests to the kubelet API, by path (containerLogs, pods, stats/summary,"
            " metrics/resource, healthz, exec, attach, portforward, run, other) and HTTP"
            " status code.",
            ["path", "code"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "salad_vk_kubelet_request_duration_seconds",
            "How long kubelet API requests took (a followed log lasts as long as it is followed).",
            ["path"],
            buckets=_DURATION,
            registry=registry,
        )
        self.log_lines = Counter(
            "salad_vk_kubelet_log_lines_total",
            "Container log lines written to kubelet API clients.",
            registry=registry,
        )
        self.log_queries = Counter(
            "salad_vk_kubelet_log_queries_total",
            "SaladCloud log-entry queries made for kubelet API clients, by what they"
            " were for: read (a log's first answer) or follow (a poll).",
            ["purpose"],
            registry=registry,
        )
        self.log_followers = Gauge(
            "salad_vk_kubelet_log_followers",
            "Logs being followed (kubectl logs -f) right now.",
            registry=registry,
        )
        self.authorizations = Counter(
            "salad_vk_kubelet_authorizations_total",
            "Kubelet API requests by authentication and authorization outcome:"
            " unauthenticated, denied, allowed or error.",
            ["result"],
            registry=registry,
        )
