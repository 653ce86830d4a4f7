"""Pods on a virtual node become container groups, and leave nothing behind.

Against the real control plane (Deployments, ReplicaSets, the scheduler and graceful
deletion are Kubernetes' own) and the simulator running SaladCloud time fast.
"""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from .harness import (
    ORG,
    deployment,
    events,
    eventually,
    is_ready,
    node_settings,
    phase,
    pods,
    running_node,
    simulator,
    unique_project,
)

pytestmark = pytest.mark.anyio


async def test_a_deployment_scales_up_down_and_away_through_container_groups(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        kube = node.kube
        apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        await kube.post(apps, deployment("web", node.name, 5))

        async def five_running_and_ready() -> bool:
            found = await pods(kube, namespace, "app=web")
            return len(found) == 5 and all(phase(p) == "Running" and is_ready(p) for p in found)

        await eventually(five_running_and_ready, 60, "5 pods Running and Ready")
        assert len(node.groups()) == 5
        assert all(g.status == "running" and g.running_count == 1 for g in node.groups())

        await kube.patch(f"{apps}/web", {"spec": {"replicas": 2}}, kind="merge")

        async def two_left() -> bool:
            found = await pods(kube, namespace, "app=web")
            return len(found) == 2 and len(node.groups()) == 2

        await eventually(two_left, 60, "3 pods gone and their 3 groups deleted")
        assert len(node.groups(deleted=True)) == 3

        await kube.delete(f"{apps}/web", {"propagationPolicy": "Foreground"})

        async def nothing_left() -> bool:
            return not await pods(kube, namespace, "app=web") and not node.groups()

        await eventually(nothing_left, 60, "an empty project after deleting the Deployment")


async def test_a_statefulset_pod_recreated_under_its_name_gets_a_new_group(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        kube = node.kube
        template = deployment("db", node.name, 1)["spec"]["template"]
        await kube.post(
            f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"name": "db"},
                "spec": {
                    "replicas": 1,
                    "serviceName": "db",
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": template,
                },
            },
        )

        async def running_uid() -> str | None:
            found = await pods(kube, namespace, "app=db")
            if len(found) == 1 and phase(found[0]) == "Running" and is_ready(found[0]):
                return str(found[0]["metadata"]["uid"])
            return None

        first: list[str] = []

        async def first_running() -> bool:
            uid = await running_uid()
            if uid:
                first.append(uid)
            return bool(uid)

        await eventually(first_running, 60, "db-0 Running")
        await kube.delete(f"/api/v1/namespaces/{namespace}/pods/db-0")

        async def reborn() -> bool:
            uid = await running_uid()
            return uid is not None and uid != first[0]

        await eventually(reborn, 60, "a new db-0 Running")
        live, gone = node.groups(), node.groups(deleted=True)
        assert len(live) == 1 and len(gone) == 1
        assert live[0].name != gone[0].name
        assert live[0].name.startswith(f"{namespace}-db-0-")
        conflicts = [r for r in sim.requests() if r.method == "POST" and r.status == 400]
        assert conflicts == []


@pytest.mark.parametrize(
    ("behind_our_back", "reason"),
    [("stop", "ContainerGroupStopped"), ("delete", "ContainerGroupDeleted")],
)
async def test_a_group_lost_behind_the_nodes_back_fails_its_pod_and_the_pod_is_replaced(
    kube_api: ApiClient, namespace: str, behind_our_back: str, reason: str
) -> None:
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        kube = node.kube
        await kube.post(
            f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("job", node.name, 1)
        )

        async def one_running() -> bool:
            found = await pods(kube, namespace, "app=job")
            return len(found) == 1 and phase(found[0]) == "Running"

        await eventually(one_running, 60, "the pod Running")
        (victim,) = await pods(kube, namespace, "app=job")
        (group,) = node.groups()
        if behind_our_back == "stop":
            sim.stop_group(ORG, project, group.name)
        else:
            sim.delete_group(ORG, project, group.name)

        async def failed_and_replaced() -> bool:
            found = {p["metadata"]["uid"]: p for p in await pods(kube, namespace, "app=job")}
            old = found.get(victim["metadata"]["uid"])
            others = [p for uid, p in found.items() if uid != victim["metadata"]["uid"]]
            failed = old is None or (phase(old) == "Failed" and old["status"]["reason"] == reason)
            return failed and any(phase(p) == "Running" for p in others)

        await eventually(failed_and_replaced, 60, f"the pod Failed ({reason}) and a replacement")
        failures = [
            e
            for e in await events(kube, namespace, victim["metadata"]["name"])
            if e["reason"] == reason
        ]
        assert failures and failures[0]["type"] == "Warning"
