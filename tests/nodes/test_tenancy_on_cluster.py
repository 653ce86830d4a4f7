"""The node says no where its wide rights would otherwise say yes (issue 13).

A pod can name things — Secrets in other fields than ``env``, its own node — that the
API server lets through. The node refuses before it reads anything for the pod and
before SaladCloud hears of it: a traversal in a Secret name, a namespace the node does
not serve, a pod that named the node without tolerating its taints.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from tests.manifests import TOLERATION

from .harness import (
    RunningNode,
    eventually,
    node_settings,
    phase,
    running_node,
    simulator,
    unique_project,
)

pytestmark = pytest.mark.anyio

MAIN = {"name": "main", "image": "nginx:1.27", "command": ["nginx"]}


def pod(name: str, node: str, *, tolerate: bool = True, **more: Any) -> dict[str, Any]:
    annotations = more.pop("annotations", {})
    spec: dict[str, Any] = {"nodeName": node, "containers": [MAIN], **more}
    if tolerate:
        spec["tolerations"] = [TOLERATION]
    return {"metadata": {"name": name, "annotations": annotations}, "spec": spec}


def refusal(found: dict[str, Any]) -> tuple[str, str] | None:
    """(reason, message) the node gave the pod, as a waiting container or a Failed pod."""
    status = found.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in (None, "ContainerCreating"):
            return str(waiting["reason"]), str(waiting.get("message") or "")
    if status.get("phase") == "Failed":
        return str(status.get("reason")), str(status.get("message"))
    return None


async def refused_with(kube: KubeClient, namespace: str, name: str) -> tuple[str, str]:
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    found: dict[str, Any] = {}

    async def answered() -> bool:
        found.update(await kube.get(path))
        return refusal(found) is not None

    await eventually(answered, 30, f"pod {name} refused")
    answer = refusal(found)
    assert answer is not None
    return answer


async def other_namespace(kube: KubeClient) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await kube.post("/api/v1/namespaces", {"metadata": {"name": name}})
    return name


def secret_reads(node: RunningNode) -> float:
    return sum(
        sample.value
        for metric in node.registry.collect()
        if metric.name == "salad_vk_kubernetes_requests"
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("resource") == "secrets"
    )


TRAVERSALS = {
    "dots": "../../{victim}/secrets/regcred",
    "encoded": "..%2F..%2F{victim}%2Fsecrets%2Fregcred",
    "query": "regcred?namespace={victim}",
}


async def test_a_secret_name_that_is_a_path_is_refused_before_any_read(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with simulator(project) as sim, running_node(kube_api, sim, node_settings(project)) as n:
        kube = n.kube
        victim = await other_namespace(kube)
        try:
            for key in ("regcred", "log-shipping"):
                await kube.post(
                    f"/api/v1/namespaces/{victim}/secrets",
                    {"metadata": {"name": key}, "stringData": {"password": "team-a-secret-value"}},
                )
            for case, template in TRAVERSALS.items():
                name = template.format(victim=victim)
                pull = f"pull-{case}"
                await kube.post(
                    f"/api/v1/namespaces/{namespace}/pods",
                    pod(pull, n.name, imagePullSecrets=[{"name": name}]),
                )
                logs = f"logs-{case}"
                await kube.post(
                    f"/api/v1/namespaces/{namespace}/pods",
                    pod(
                        logs,
                        n.name,
                        annotations={
                            "salad.com/logging-secret": name.replace("regcred", "log-shipping"),
                            "salad.com/logging-http-host": "attacker.example.com",
                        },
                    ),
                )
                reason, message = await refused_with(kube, namespace, pull)
                assert reason == "InvalidImagePullSecret"
                assert message.startswith("spec.imagePullSecrets[0].name:")
                reason, message = await refused_with(kube, namespace, logs)
                assert reason == "InvalidAnnotation"
                assert message.startswith("metadata.annotations['salad.com/logging-secret']:")
            assert secret_reads(n) == 0, "no Secret read reached the API server"
            assert not [r for r in sim.requests() if r.method == "POST"], "nothing was created"

            # The same field naming a Secret of the pod's own namespace is read (and
            # counted: the zero above is a measurement, not a metric that never moves).
            await kube.post(
                f"/api/v1/namespaces/{namespace}/secrets",
                {"metadata": {"name": "own"}, "stringData": {"password": "own-value"}},
            )
            await kube.post(
                f"/api/v1/namespaces/{namespace}/pods",
                pod("honest", n.name, imagePullSecrets=[{"name": "own"}]),
            )

            async def honest_running() -> bool:
                found = await kube.get(f"/api/v1/namespaces/{namespace}/pods/honest")
                return phase(found) == "Running"

            await eventually(honest_running, 30, "the pod naming its own Secret Running")
            assert secret_reads(n) >= 1
        finally:
            await kube.delete(f"/api/v1/namespaces/{victim}")


async def test_a_pod_of_a_namespace_the_node_does_not_serve_is_refused(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with simulator(project) as sim:
        kube = KubeClient(kube_api, node="test")
        outsider = await other_namespace(kube)
        settings = replace(node_settings(project), allowed_namespaces=frozenset({namespace}))
        try:
            async with running_node(kube_api, sim, settings) as n:
                await kube.post(f"/api/v1/namespaces/{outsider}/pods", pod("intruder", n.name))
                await kube.post(f"/api/v1/namespaces/{namespace}/pods", pod("tenant", n.name))
                reason, message = await refused_with(kube, outsider, "intruder")
                assert reason == "NamespaceNotAllowed"
                assert message.startswith("metadata.namespace:")

                async def tenant_running() -> bool:
                    found = await kube.get(f"/api/v1/namespaces/{namespace}/pods/tenant")
                    return phase(found) == "Running"

                await eventually(tenant_running, 30, "the allowed namespace's pod Running")
                assert len(n.groups()) == 1, "only the allowed pod got a group"
        finally:
            await kube.delete(f"/api/v1/namespaces/{outsider}")


async def test_a_pod_that_names_the_node_without_its_toleration_is_refused(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with simulator(project) as sim, running_node(kube_api, sim, node_settings(project)) as n:
        await n.kube.post(
            f"/api/v1/namespaces/{namespace}/pods", pod("skipper", n.name, tolerate=False)
        )
        reason, message = await refused_with(n.kube, namespace, "skipper")
        assert reason == "TaintNotTolerated"
        assert "virtual-kubelet.io/provider=saladcloud:NoSchedule" in message
        assert not [r for r in sim.requests() if r.method == "POST"], "nothing was created"
