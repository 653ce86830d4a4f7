from typing import Any

import pytest

from nodes.translate import INVALID_PROBE, UNSUPPORTED_POD_FEATURE
from nodes.translate.probes import probe_user_agent
from tests.translate.pods import CONTAINER, create_body, make_context, make_pod, refusal_of

KUBELET_HEADERS = [
    {"name": "User-Agent", "value": "kube-probe/1.31"},
    {"name": "Accept", "value": "*/*"},
]
KUBELET_DEFAULTS = {
    "failure_threshold": 3,
    "initial_delay_seconds": 0,
    "period_seconds": 10,
    "success_threshold": 1,
    "timeout_seconds": 1,
}
PORTS = [{"name": "http", "containerPort": 8080}, {"name": "grpc", "containerPort": 9090}]
ENV = [
    {"name": "CHECK", "value": "/healthz"},
    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
]


def probe_of(kind: str, probe: dict[str, Any]) -> dict[str, Any]:
    pod = make_pod(container={"ports": PORTS, "env": ENV, kind: probe})
    body = create_body(pod, make_context(secrets={"s": {"k": "value"}}))
    request_name = {
        "livenessProbe": "liveness_probe",
        "readinessProbe": "readiness_probe",
        "startupProbe": "startup_probe",
    }[kind]
    translated: dict[str, Any] = body[request_name]
    return translated


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("probe", "mechanism"),
    [
        pytest.param(
            {"httpGet": {"path": "/ready", "port": 8080}},
            {
                "http": {
                    "path": "/ready",
                    "port": 8080,
                    "scheme": "http",
                    "headers": KUBELET_HEADERS,
                }
            },
            id="http",
        ),
        pytest.param(
            {"httpGet": {"port": "http", "scheme": "HTTPS"}},
            {"http": {"path": "/", "port": 8080, "scheme": "https", "headers": KUBELET_HEADERS}},
            id="http-named-port-default-path",
        ),
        pytest.param(
            {"httpGet": {"path": "ready", "port": "8080"}},
            {
                "http": {
                    "path": "/ready",
                    "port": 8080,
                    "scheme": "http",
                    "headers": KUBELET_HEADERS,
                }
            },
            id="http-relative-path-numeric-string-port",
        ),
        pytest.param(
            {
                "httpGet": {
                    "path": "/",
                    "port": 80,
                    "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                }
            },
            {
                "http": {
                    "path": "/",
                    "port": 80,
                    "scheme": "http",
                    "headers": [{"name": "X-Probe", "value": "1"}, *KUBELET_HEADERS],
                }
            },
            id="http-own-headers-plus-kubelet-defaults",
        ),
        pytest.param(
            {
                "httpGet": {
                    "path": "/",
                    "port": 80,
                    "httpHeaders": [
                        {"name": "user-agent", "value": "mine"},
                        {"name": "Accept", "value": ""},
                    ],
                }
            },
            {
                "http": {
                    "path": "/",
                    "port": 80,
                    "scheme": "http",
                    "headers": [{"name": "user-agent", "value": "mine"}],
                }
            },
            id="http-own-user-agent-empty-accept",
        ),
        pytest.param({"tcpSocket": {"port": "grpc"}}, {"tcp": {"port": 9090}}, id="tcp-named-port"),
        pytest.param(
            {"grpc": {"port": 9090}},
            {"grpc": {"port": 9090, "service": ""}},
            id="grpc-default-service",
        ),
        pytest.param(
            {"grpc": {"port": 9090, "service": "health.v1"}},
            {"grpc": {"port": 9090, "service": "health.v1"}},
            id="grpc-service",
        ),
        pytest.param(
            {"exec": {"command": ["curl", "localhost$(CHECK)", "-H", "t: $(TOKEN)"]}},
            {"exec": {"command": ["curl", "localhost/healthz", "-H", "t: "]}},
            id="exec-expands-literal-env-only",
        ),
    ],
)
def test_probe_mechanisms_map_one_to_one(probe: dict[str, Any], mechanism: dict[str, Any]) -> None:
    assert probe_of("readinessProbe", probe) == {**KUBELET_DEFAULTS, **mechanism}


@pytest.mark.spec_checked
@pytest.mark.parametrize("kind", ["livenessProbe", "readinessProbe", "startupProbe"])
def test_every_probe_kind_is_translated_with_kubelet_defaults(kind: str) -> None:
    assert probe_of(kind, {"tcpSocket": {"port": 80}}) == {**KUBELET_DEFAULTS, "tcp": {"port": 80}}


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        pytest.param(
            {
                "initialDelaySeconds": 5,
                "periodSeconds": 7,
                "timeoutSeconds": 3,
                "successThreshold": 2,
                "failureThreshold": 4,
            },
            {
                "initial_delay_seconds": 5,
                "period_seconds": 7,
                "timeout_seconds": 3,
                "success_threshold": 2,
                "failure_threshold": 4,
            },
            id="within-bounds",
        ),
        pytest.param(
            {
                "initialDelaySeconds": 5000,
                "periodSeconds": 300,
                "timeoutSeconds": 120,
                "successThreshold": 30,
                "failureThreshold": 50,
            },
            {
                "initial_delay_seconds": 1200,
                "period_seconds": 120,
                "timeout_seconds": 60,
                "success_threshold": 10,
                "failure_threshold": 20,
            },
            id="clamped-to-maximum",
        ),
        pytest.param(
            {
                "initialDelaySeconds": -1,
                "periodSeconds": 0,
                "timeoutSeconds": 0,
                "successThreshold": 0,
                "failureThreshold": 0,
            },
            {
                "initial_delay_seconds": 0,
                "period_seconds": 1,
                "timeout_seconds": 1,
                "success_threshold": 1,
                "failure_threshold": 1,
            },
            id="clamped-to-minimum",
        ),
    ],
)
def test_probe_numbers_are_clamped_to_the_api_bounds(
    numbers: dict[str, int], expected: dict[str, int]
) -> None:
    assert probe_of("livenessProbe", {"tcpSocket": {"port": 80}, **numbers}) == {
        **expected,
        "tcp": {"port": 80},
    }


@pytest.mark.parametrize(
    ("probe", "reason", "field"),
    [
        pytest.param(
            {"httpGet": {"port": "metrics"}},
            INVALID_PROBE,
            "readinessProbe.httpGet.port",
            id="unknown-named-port",
        ),
        pytest.param(
            {"tcpSocket": {"port": 70000}},
            INVALID_PROBE,
            "readinessProbe.tcpSocket.port",
            id="port-out-of-range",
        ),
        pytest.param(
            {"httpGet": {"port": 80, "host": "10.0.0.1"}},
            UNSUPPORTED_POD_FEATURE,
            "readinessProbe.httpGet.host",
            id="http-other-host",
        ),
        pytest.param(
            {"tcpSocket": {"port": 80, "host": "db"}},
            UNSUPPORTED_POD_FEATURE,
            "readinessProbe.tcpSocket.host",
            id="tcp-other-host",
        ),
        pytest.param(
            {"exec": {"command": []}}, INVALID_PROBE, "readinessProbe.exec.command", id="empty-exec"
        ),
        pytest.param(
            {"exec": {"command": ["check", ""]}},
            INVALID_PROBE,
            "readinessProbe.exec.command[1]",
            id="empty-exec-element",
        ),
        pytest.param(
            {"httpGet": {"port": 80, "httpHeaders": [{"name": "X-Empty", "value": ""}]}},
            INVALID_PROBE,
            "readinessProbe.httpGet.httpHeaders[0].value",
            id="empty-header-value",
        ),
        pytest.param(
            {
                "httpGet": {
                    "port": 80,
                    "httpHeaders": [{"name": f"X-{i}", "value": "1"} for i in range(50)],
                }
            },
            INVALID_PROBE,
            "readinessProbe.httpGet.httpHeaders",
            id="too-many-headers",
        ),
        pytest.param(
            {"httpGet": {"port": 80, "path": "/" + "a" * 2048}},
            INVALID_PROBE,
            "readinessProbe.httpGet.path",
            id="path-too-long",
        ),
        pytest.param({"periodSeconds": 5}, INVALID_PROBE, "readinessProbe", id="no-mechanism"),
        pytest.param(
            {"tcpSocket": {"port": 80}, "exec": {"command": ["x"]}},
            INVALID_PROBE,
            "readinessProbe",
            id="two-mechanisms",
        ),
    ],
)
def test_probes_that_cannot_be_expressed_are_refused(
    probe: dict[str, Any], reason: str, field: str
) -> None:
    refusal = refusal_of(make_pod(container={"ports": PORTS, "readinessProbe": probe}))

    assert (refusal.reason, refusal.field) == (reason, f"{CONTAINER}.{field}")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param("v1.31.2", "kube-probe/1.31", id="release"),
        pytest.param("v1.30.4-gke.1348000", "kube-probe/1.30", id="vendor-build"),
        pytest.param("1.29.0", "kube-probe/1.29", id="no-v"),
        pytest.param("", "kube-probe", id="unknown"),
    ],
)
def test_probes_identify_themselves_like_the_kubelet(version: str, expected: str) -> None:
    assert probe_user_agent(version) == expected
