"""Which node a request is about, and the kubelet's authorization attributes for it."""

from __future__ import annotations

import pytest

from supervisor.kubelet.routes import Attributes, Kind, attributes, forwarded_node, route


@pytest.mark.parametrize(
    ("method", "path", "verb", "subresource"),
    [
        ("GET", "/stats/summary", "get", "stats"),
        ("GET", "/stats", "get", "stats"),
        ("GET", "/statsz", "get", "proxy"),
        ("GET", "/metrics/resource", "get", "metrics"),
        ("GET", "/metrics", "get", "metrics"),
        ("GET", "/metricsx", "get", "proxy"),
        ("GET", "/logs/kubelet.log", "get", "log"),
        ("GET", "/logs", "get", "log"),
        ("GET", "/containerLogs/ns/pod/c", "get", "proxy"),
        ("GET", "/pods", "get", "proxy"),
        ("GET", "/healthz", "get", "proxy"),
        ("POST", "/exec/ns/pod/c", "create", "proxy"),
        ("PUT", "/pods", "update", "proxy"),
        ("PATCH", "/pods", "patch", "proxy"),
        ("DELETE", "/pods", "delete", "proxy"),
        ("OPTIONS", "/pods", "", "proxy"),
    ],
)
def test_paths_map_to_the_kubelets_attributes(
    method: str, path: str, verb: str, subresource: str
) -> None:
    assert attributes(method, path, "node-a") == Attributes(verb, subresource, "node-a")


def test_access_review_attributes_name_the_node_or_every_node() -> None:
    one = attributes("GET", "/pods", "node-a").resource_attributes()
    every = attributes("GET", "/pods", "").resource_attributes()

    assert one == {
        "verb": "get",
        "group": "",
        "version": "v1",
        "resource": "nodes",
        "subresource": "proxy",
        "name": "node-a",
    }
    assert "name" not in every


@pytest.mark.parametrize(
    ("header", "node"),
    [
        ("/api/v1/nodes/salad-a/proxy/stats/summary", "salad-a"),
        ("/api/v1/nodes/salad-a/proxy", "salad-a"),
        ("/api/v1/nodes/salad-a:10250/proxy/pods", "salad-a"),
        ("/api/v1/nodes/https:salad-a:10250/proxy/pods", "salad-a"),
        ("/api/v1/nodes/salad-a/proxy/pods?x=1", "salad-a"),
        ("/api/v1/namespaces/ns/pods/p/log", None),
        ("/api/v1/nodes/salad-a/status", None),
        ("", None),
        (None, None),
    ],
)
def test_the_api_servers_forwarded_uri_names_the_node(header: str | None, node: str | None) -> None:
    assert forwarded_node(header) == node


@pytest.mark.parametrize(
    ("path", "kind", "pod_key", "container", "problem"),
    [
        ("/containerLogs/ns/pod/main", Kind.CONTAINER_LOGS, "ns/pod", "main", ""),
        ("/containerLogs/ns/pod", Kind.CONTAINER_LOGS, "ns/pod", "", "Missing container name."),
        ("/containerLogs/ns", Kind.CONTAINER_LOGS, "ns/", "", "Missing podID."),
        ("/containerLogs/ns/pod/main/extra", Kind.UNKNOWN, "/", "", ""),
        ("/exec/ns/pod/main", Kind.STREAMING, "ns/pod", "main", ""),
        ("/exec/ns/pod/uid-1/main", Kind.STREAMING, "ns/pod", "main", ""),
        ("/portForward/ns/pod", Kind.STREAMING, "ns/pod", "", ""),
        ("/pods", Kind.PODS, "/", "", ""),
        ("/pods/", Kind.PODS, "/", "", ""),
        ("/stats/summary", Kind.STATS_SUMMARY, "/", "", ""),
        ("/metrics/resource", Kind.METRICS_RESOURCE, "/", "", ""),
        ("/healthz", Kind.HEALTHZ, "/", "", ""),
        ("/configz", Kind.UNKNOWN, "/", "", ""),
    ],
)
def test_routes(path: str, kind: Kind, pod_key: str, container: str, problem: str) -> None:
    found = route(path)
    assert (found.kind, found.pod_key, found.container, found.problem) == (
        kind,
        pod_key,
        container,
        problem,
    )


def test_streaming_routes_say_what_was_asked_for_metrics_and_messages() -> None:
    assert route("/portForward/ns/pod").action == "port-forward"
    assert route("/portForward/ns/pod").metric_path == "portforward"
    assert route("/attach/ns/pod/main").action == "attach"
    assert route("/containerLogs/ns/pod/main").metric_path == "containerLogs"
