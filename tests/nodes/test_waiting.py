"""Pods the node cannot run (yet) wait, as the kubelet's do (issues 14.1 and 11.3).

A refused pod under a Deployment must not become a storm: Failed pods are replaced at
once and refused again. Pending with a waiting reason, the ReplicaSet leaves it be,
and a fixed template rolls out as usual. A pod waiting for a Secret shows why and
starts once the Secret exists.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from tests.manifests import CONTAINER

from .harness import (
    RunningNode,
    deployment,
    eventually,
    node_settings,
    phase,
    pods,
    running_node,
    simulator,
    unique_project,
)

pytestmark = pytest.mark.anyio


def waiting_reason(pod: dict[str, Any]) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason")


async def test_a_deployment_with_an_annotation_typo_keeps_its_pods_waiting_no_storm(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with simulator(project) as sim, running_node(kube_api, sim, node_settings(project)) as n:
        kube = n.kube
        typo = deployment("typo", n.name, 3)
        typo["spec"]["template"]["metadata"]["annotations"] = {"salad.com/country-code": "us"}
        apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        await kube.post(apps, typo)

        async def all_waiting() -> bool:
            found = await pods(kube, namespace, "app=typo")
            return len(found) == 3 and all(
                phase(p) == "Pending" and waiting_reason(p) == "InvalidAnnotation" for p in found
            )

        await eventually(all_waiting, 30, "3 pods Pending with InvalidAnnotation")
        # Several passes and resyncs later, still the same three pods: nothing replaced.
        first = {p["metadata"]["uid"] for p in await pods(kube, namespace, "app=typo")}
        await anyio.sleep(5 * n.settings.poll_interval + 3)
        later = await pods(kube, namespace, "app=typo")
        assert {p["metadata"]["uid"] for p in later} == first
        assert not [r for r in sim.requests() if r.method == "POST"], "nothing sent to SaladCloud"
        counted = n.registry.get_sample_value(
            "salad_vk_pod_refusals_total", {"node": n.name, "reason": "InvalidAnnotation"}
        )
        assert counted == 3, "three pods refused, however often they were looked at"

        fixed = {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {
                            "salad.com/country-code": None,
                            "salad.com/country-codes": "us",
                        }
                    }
                }
            }
        }
        await kube.patch(f"{apps}/typo", fixed, kind="merge")

        async def rolled_out() -> bool:
            found = await pods(kube, namespace, "app=typo")
            live = [p for p in found if not p["metadata"].get("deletionTimestamp")]
            return len(live) == 3 and all(phase(p) == "Running" for p in live)

        await eventually(rolled_out, 60, "3 pods of the fixed template Running")


async def test_a_pod_waiting_for_its_secret_says_so_then_starts_when_it_exists(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with simulator(project) as sim, running_node(kube_api, sim, node_settings(project)) as n:
        await start_waiting_for_secret(n, namespace)
        await n.kube.post(
            f"/api/v1/namespaces/{namespace}/secrets",
            {"metadata": {"name": "db"}, "stringData": {"password": "s3cr3t-value"}},
        )
        path = f"/api/v1/namespaces/{namespace}/pods/needs-db"

        async def running() -> bool:
            return phase(await n.kube.get(path)) == "Running"

        # The node retries a missing reference at least every 30 s, as the kubelet does.
        await eventually(running, 45, "the pod Running once its Secret exists")
        (group,) = n.groups()
        assert group.document["container"]["environment_variables"]["PASSWORD"] == "s3cr3t-value"


async def start_waiting_for_secret(n: RunningNode, namespace: str) -> None:
    container = {
        **CONTAINER,
        "env": [
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
        ],
    }
    await n.kube.post(
        f"/api/v1/namespaces/{namespace}/pods",
        {
            "metadata": {"name": "needs-db"},
            "spec": {
                "nodeName": n.name,
                "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
                "containers": [container],
            },
        },
    )
    path = f"/api/v1/namespaces/{namespace}/pods/needs-db"

    async def waiting() -> bool:
        found = await n.kube.get(path)
        return phase(found) == "Pending" and waiting_reason(found) == "CreateContainerConfigError"

    await eventually(waiting, 30, "Pending with CreateContainerConfigError")
