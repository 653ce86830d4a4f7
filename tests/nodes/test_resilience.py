"""What the outside world does wrong must not cost a workload: a glitching list, a new
supervisor IP, a deleted Node object, an API call that keeps failing."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeError, KubeNotFound
from nodes.saladcloud.models import ContainerGroup
from nodes.saladcloud.ratelimit import Priority
from tests.manifests import TOLERATION

from .harness import (
    KEY,
    ORG,
    RunningNode,
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


async def _running(node: RunningNode, namespace: str, app: str, count: int) -> None:
    async def ready() -> bool:
        found = await pods(node.kube, namespace, f"app={app}")
        return len(found) == count and all(phase(p) == "Running" and is_ready(p) for p in found)

    await eventually(ready, 60, f"{count} pods of {app} Running and Ready")


async def test_groups_missing_from_lists_are_asked_for_by_name_not_taken_for_gone(
    kube_api: ApiClient, namespace: str
) -> None:
    """A list that leaves groups out (a glitch, or a project past 100 groups) must not
    fail their pods, let alone delete the groups."""
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        await node.kube.post(
            f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("steady", node.name, 2)
        )
        await _running(node, namespace, "steady", 2)
        salad = node.node.reconciler._salad
        real_list = salad.list_container_groups

        async def empty_list(*, priority: Priority = Priority.POLL) -> list[ContainerGroup]:
            await real_list(priority=priority)
            return []

        salad.list_container_groups = empty_list  # type: ignore[method-assign]
        await anyio.sleep(6 * node.settings.poll_interval)
        salad.list_container_groups = real_list  # type: ignore[method-assign]

        found = await pods(node.kube, namespace, "app=steady")
        assert [phase(p) for p in found] == ["Running", "Running"]
        assert all(is_ready(p) for p in found)
        assert len(node.groups()) == 2 and not node.groups(deleted=True)
        for pod in found:
            reasons = {
                e["reason"] for e in await events(node.kube, namespace, pod["metadata"]["name"])
            }
            assert "ContainerGroupDeleted" not in reasons


async def test_status_keeps_flowing_after_the_supervisor_comes_back_with_a_new_ip(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with simulator(project) as sim:
        first = node_settings(project, node_ip="10.1.1.1")
        async with running_node(kube_api, sim, first, keep_node=True) as node:
            await node.kube.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                deployment("moved", node.name, 1),
            )
            await _running(node, namespace, "moved", 1)
        async with running_node(kube_api, sim, node_settings(project, node_ip="10.2.2.2")) as node:
            (group,) = node.groups()
            sim.stop_group(ORG, project, group.name)

            async def failed() -> bool:
                return any(
                    phase(p) == "Failed" for p in await pods(node.kube, namespace, "app=moved")
                )

            await eventually(failed, 30, "the stopped group's pod Failed")
            refused = node.registry.get_sample_value(
                "salad_vk_kubernetes_requests_total",
                {"node": node.name, "verb": "PATCH", "resource": "pods/status", "code": "422"},
            )
            assert not refused


async def test_a_deleted_node_object_is_registered_again_before_its_pods_are_collected(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        await node.kube.post(
            f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("kept", node.name, 2)
        )
        await _running(node, namespace, "kept", 2)
        before = {p["metadata"]["uid"] for p in await pods(node.kube, namespace, "app=kept")}
        old_uid = (await node.kube.get(f"/api/v1/nodes/{node.name}"))["metadata"]["uid"]
        await node.kube.delete(f"/api/v1/nodes/{node.name}")

        async def registered_again() -> bool:
            try:
                current = await node.kube.get(f"/api/v1/nodes/{node.name}")
            except KubeNotFound:
                return False
            return bool(current["metadata"]["uid"] != old_uid)

        # PodGC waits 40 s before collecting pods of a missing node.
        await eventually(registered_again, 25, "the Node registered again")
        await anyio.sleep(2)
        after = {p["metadata"]["uid"] for p in await pods(node.kube, namespace, "app=kept")}
        assert after == before
        assert len(node.groups()) == 2 and not node.groups(deleted=True)


async def test_a_failing_call_for_one_pod_backs_off_instead_of_spinning(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        calls: list[float] = []

        async def forbidden(*_: Any) -> Any:
            calls.append(anyio.current_time())
            raise KubeError(403, "Forbidden", "secrets is forbidden", "GET", "/api/v1/...")

        node.node.reconciler._translator._references.read = forbidden  # type: ignore[method-assign,assignment]
        name = f"needs-secret-{uuid.uuid4().hex[:4]}"
        await node.kube.post(
            f"/api/v1/namespaces/{namespace}/pods",
            {
                "metadata": {"name": name},
                "spec": {
                    "nodeName": node.name,
                    "tolerations": [TOLERATION],
                    "containers": [
                        {
                            "name": "main",
                            "image": "nginx",
                            "command": ["nginx"],
                            "env": [
                                {
                                    "name": "TOKEN",
                                    "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                                }
                            ],
                        }
                    ],
                },
            },
        )
        await anyio.sleep(5)
        # Backoff from 2 s: at most a handful of tries in 5 s, not one per 50 ms pass.
        assert 1 <= len(calls) <= 3, calls


async def test_a_project_saladcloud_does_not_know_is_reported_on_the_node(
    kube_api: ApiClient,
) -> None:
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(f"{project}-typo")) as node,
    ):

        async def reported() -> bool:
            current = await node.kube.get(f"/api/v1/nodes/{node.name}")
            conditions = {c["type"]: c for c in current["status"]["conditions"]}
            taints = {t["key"] for t in current["spec"].get("taints") or []}
            salad = conditions["SaladCloudReachable"]
            return (
                salad["status"] == "False"
                and salad["reason"] == "ProjectNotFound"
                and conditions["Ready"]["status"] == "True"
                and "salad.com/saladcloud-unavailable" in taints
            )

        await eventually(reported, 20, "ProjectNotFound on the node, Ready kept, tainted")


async def test_the_lease_is_owned_by_the_node_and_others_conditions_survive_our_writes(
    kube_api: ApiClient,
) -> None:
    project = unique_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        path = f"/api/v1/nodes/{node.name}"
        uid = (await node.kube.get(path))["metadata"]["uid"]
        lease = await node.kube.get(
            f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
        )
        (owner,) = lease["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Node", node.name, uid)

        # node-problem-detector (say) reports something of its own...
        await node.kube.patch(
            f"{path}/status",
            {"status": {"conditions": [{"type": "example.com/GPUDriver", "status": "False"}]}},
        )
        # ...then SaladCloud refuses the key, and the node writes its conditions.
        sim.revoke_key(KEY)

        async def written_and_kept() -> bool:
            current = await node.kube.get(path)
            kinds = {c["type"]: c["status"] for c in current["status"]["conditions"]}
            return kinds.get("SaladCloudReachable") == "False" and "example.com/GPUDriver" in kinds

        await eventually(written_and_kept, 20, "our condition written, theirs kept")


async def test_a_slow_create_is_waited_for_not_abandoned_and_sent_again(
    kube_api: ApiClient, namespace: str
) -> None:
    """``mutation_grace`` bounds a mutation only once the node stops: a create that
    takes longer (SaladCloud slow, or a long wait for a rate-limit token) is one create."""
    project = unique_project()
    settings = node_settings(project, mutation_grace=0.5)
    async with simulator(project) as sim, running_node(kube_api, sim, settings) as node:
        sim.set_faults(latency=2.0)
        await node.kube.post(
            f"/api/v1/namespaces/{namespace}/pods",
            {
                "metadata": {"name": "slow"},
                "spec": {
                    "nodeName": node.name,
                    "tolerations": [TOLERATION],
                    "containers": [{"name": "main", "image": "nginx", "command": ["nginx"]}],
                },
            },
        )

        async def running() -> bool:
            found = await node.kube.get(f"/api/v1/namespaces/{namespace}/pods/slow")
            return phase(found) == "Running"

        await eventually(running, 60, "the pod Running")
        posts = [r for r in sim.requests() if r.method == "POST" and r.path.endswith("/containers")]
        assert len(posts) == 1, "one create, not one per grace period"
