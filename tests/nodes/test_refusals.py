"""A pod the node cannot run waits, as the kubelet's pods do: Pending, its container
waiting with a reason and a message naming the field, one Warning event — and nothing
about it is sent to SaladCloud. Never Failed: a ReplicaSet would replace a Failed pod
at once with one refused the same way, a storm of pods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from tests.manifests import TOLERATION

from .harness import (
    RunningNode,
    events,
    eventually,
    node_settings,
    running_node,
    simulator,
    unique_project,
)

pytestmark = pytest.mark.anyio

MAIN = {"name": "main", "image": "nginx:1.27", "command": ["nginx"]}


def _pod(name: str, node: str, **spec: Any) -> dict[str, Any]:
    annotations = spec.pop("annotations", {})
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"nodeName": node, "tolerations": [TOLERATION], "containers": [MAIN], **spec},
    }
    return body


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "two-containers",
        {"containers": [MAIN, {**MAIN, "name": "sidecar"}]},
        "UnsupportedPodFeature",
        "spec.containers",
    ),
    (
        "init-container",
        {"initContainers": [{**MAIN, "name": "init"}]},
        "UnsupportedPodFeature",
        "spec.initContainers",
    ),
    (
        "volume",
        {
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{**MAIN, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        },
        "UnsupportedPodFeature",
        "spec.volumes",
    ),
    (
        "host-port",
        {"containers": [{**MAIN, "ports": [{"containerPort": 80, "hostPort": 8080}]}]},
        "UnsupportedPodFeature",
        "hostPort",
    ),
    ("host-network", {"hostNetwork": True}, "UnsupportedPodFeature", "spec.hostNetwork"),
    (
        "bad-annotation",
        {"annotations": {"salad.com/container-group-priority": "urgent"}},
        "InvalidAnnotation",
        "salad.com/container-group-priority",
    ),
    (
        "empty-env-value",
        {"containers": [{**MAIN, "env": [{"name": "EMPTY", "value": ""}]}]},
        "InvalidEnvironmentVariable",
        "spec.containers[0].env[0].value",
    ),
    (
        "args-without-command",
        {"containers": [{"name": "main", "image": "nginx:1.27", "args": ["-g", "x"]}]},
        "UnsupportedPodFeature",
        "spec.containers[0].args",
    ),
]


@pytest.fixture
async def node(kube_api: ApiClient) -> AsyncIterator[RunningNode]:
    project = unique_project()
    async with simulator(project) as sim, running_node(kube_api, sim, node_settings(project)) as n:
        yield n


def waiting(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return dict((statuses[0].get("state") or {}).get("waiting") or {})


@pytest.mark.parametrize(("case", "spec", "reason", "field"), CASES, ids=[c[0] for c in CASES])
async def test_the_pod_waits_with_reason_field_and_event(
    node: RunningNode, namespace: str, case: str, spec: dict[str, Any], reason: str, field: str
) -> None:
    kube = node.kube
    await kube.post(f"/api/v1/namespaces/{namespace}/pods", _pod(case, node.name, **spec))
    path = f"/api/v1/namespaces/{namespace}/pods/{case}"

    async def refused() -> bool:
        return waiting(await kube.get(path)).get("reason") == reason

    await eventually(refused, 30, f"pod {case} waiting with {reason}")
    pod = await kube.get(path)
    assert pod["status"]["phase"] == "Pending"
    assert field in waiting(pod)["message"]

    async def warned() -> bool:
        return any(
            e["reason"] == reason and field in e["message"] and e["type"] == "Warning"
            for e in await events(kube, namespace, case)
        )

    await eventually(warned, 10, f"a Warning event {reason} naming {field}")
    assert not [r for r in node.sim.requests() if r.method == "POST"], "nothing was created"
    refusals = node.registry.get_sample_value(
        "salad_vk_pod_refusals_total", {"node": node.name, "reason": reason}
    )
    assert refusals == 1, "the pod counts once"
