"""The chart's write policy, enforced by the API server: the release's ServiceAccount
writes its own Nodes, Leases and pods, and is refused everyone else's, even where
RBAC alone would let it; a node removed from the values is still drained."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeNotFound
from nodes.node_object import micro_timestamp
from nodes.settings import MANAGED_BY_LABEL
from tests.controlplane.cluster import ControlPlane
from tests.manifests import TOLERATION, workload
from tests.nodes.harness import eventually, phase, pods
from tests.supervisor.harness import ORG, schedulable, simulator

from .chart import one
from .release import managed_by, policy_refusal, release_values, running_release

pytestmark = pytest.mark.anyio

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
DRY_RUN = {"dryRun": "All"}
NODE_WRITES = "salad-vk may write only the Nodes of this release"
LEASE_WRITES = "salad-vk may write only the Leases of this release's nodes"
POD_WRITES = "salad-vk may only write the status of, and delete, pods bound to this release's"


def bare_pod(name: str, node: str, *, tolerate: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [TOLERATION] if tolerate else [],
            "containers": [{"name": "main", "image": "nginx:1.27"}],
        },
    }


async def allowed(request: Awaitable[Any]) -> bool:
    return await policy_refusal(request) is None


async def refused(request: Awaitable[Any], says: str) -> bool:
    """Refused by the write policy with its own message, not by an expression error."""
    message = await policy_refusal(request)
    assert message is not None, "allowed"
    assert message.startswith(says), message
    return True


async def test_the_service_account_writes_only_its_own_nodes_leases_and_pods(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    admin = KubeClient(kube_api, node="test")
    prefix = f"w{uuid.uuid4().hex[:6]}"
    own, other = f"{prefix}-own", f"{prefix}-kubelet"
    project = f"{prefix}-p"
    # A Node of someone else (a real kubelet's, as far as the API server knows), with
    # its Lease and a pod bound to it.
    await admin.post("/api/v1/nodes", {"metadata": {"name": other}})
    now = micro_timestamp(datetime.now(UTC))
    await admin.post(
        LEASES,
        {
            "metadata": {"name": other, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": other, "leaseDurationSeconds": 40, "renewTime": now},
        },
    )
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    await admin.post(pods_path, bare_pod("theirs", other, tolerate=False))
    try:
        async with simulator([project]) as sim:
            values = release_values(sim, {own: project}, [namespace])
            async with running_release(
                kube_api, control_plane.kubeconfig, namespace, values, tmp_path
            ) as release:
                as_sa = release.as_service_account
                await eventually(lambda: schedulable(admin, [own]), 30, f"node {own} Ready")
                await admin.post(pods_path, bare_pod("ours", own, tolerate=True))

                async def running() -> bool:
                    found = await pods(admin, namespace)
                    return any(
                        p["metadata"]["name"] == "ours" and phase(p) == "Running" for p in found
                    )

                await eventually(running, 60, "the pod on its own node Running")

                # Everyone else's objects: RBAC lets each of these through, the
                # policy refuses them.
                status = {"status": {"podIP": "10.6.6.6"}}
                theirs = f"{pods_path}/theirs"
                assert await refused(as_sa.patch(f"{theirs}/status", status), POD_WRITES)
                assert await refused(as_sa.delete(theirs), POD_WRITES)
                taint = {"spec": {"taints": [{"key": "x", "effect": "NoSchedule"}]}}
                assert await refused(as_sa.patch(f"/api/v1/nodes/{other}", taint), NODE_WRITES)
                claim = {"metadata": {"labels": {MANAGED_BY_LABEL: managed_by(release.objects)}}}
                assert await refused(as_sa.patch(f"/api/v1/nodes/{other}", claim), NODE_WRITES)
                assert await refused(as_sa.delete(f"/api/v1/nodes/{other}"), NODE_WRITES)
                lease = await admin.get(f"{LEASES}/{other}")
                lease["spec"]["holderIdentity"] = "salad-vk"
                assert await refused(as_sa.put(f"{LEASES}/{other}", lease), LEASE_WRITES)
                assert await refused(as_sa.delete(f"{LEASES}/{other}"), LEASE_WRITES)
                # A Lease is judged by its node's name, not its label: a kubelet may label
                # its own Lease as it likes, and that must not make it ours.
                labelled = await admin.get(f"{LEASES}/{other}")
                labelled["metadata"]["labels"] = {MANAGED_BY_LABEL: managed_by(release.objects)}
                labelled = await admin.put(f"{LEASES}/{other}", labelled)
                labelled["spec"]["holderIdentity"] = "salad-vk"
                assert await refused(as_sa.put(f"{LEASES}/{other}", labelled), LEASE_WRITES)
                # ... nor may it make up a Node of its own, labelled or not.
                made_up = {
                    "metadata": {
                        "name": f"{prefix}-made-up",
                        "labels": {MANAGED_BY_LABEL: managed_by(release.objects)},
                    }
                }
                assert await refused(as_sa.post("/api/v1/nodes", made_up), NODE_WRITES)

                # Nothing of theirs changed.
                assert (await admin.get(theirs))["status"].get("podIP") is None
                assert "taints" not in (await admin.get(f"/api/v1/nodes/{other}"))["spec"]
                assert (await admin.get(f"{LEASES}/{other}"))["spec"]["holderIdentity"] == other

                # Its own objects: the same writes pass (dry-run, so the node is left be).
                ours = f"{pods_path}/ours"
                patch = "application/strategic-merge-patch+json"
                assert await allowed(
                    as_sa.request(
                        "PATCH",
                        f"{ours}/status",
                        params=DRY_RUN,
                        body=status,
                        content_type=patch,
                    )
                )
                assert await allowed(as_sa.request("DELETE", ours, params=DRY_RUN))
                assert await allowed(
                    as_sa.request(
                        "PATCH",
                        f"/api/v1/nodes/{own}",
                        params=DRY_RUN,
                        body=taint,
                        content_type=patch,
                    )
                )
                assert await allowed(
                    as_sa.request("DELETE", f"/api/v1/nodes/{own}", params=DRY_RUN)
                )
                own_lease = await admin.get(f"{LEASES}/{own}")
                assert await allowed(
                    as_sa.request("PUT", f"{LEASES}/{own}", params=DRY_RUN, body=own_lease)
                )
                # ... but not the label off its own Node, which would take it out of reach.
                unlabel = {"metadata": {"labels": {MANAGED_BY_LABEL: None}}}
                assert await refused(
                    as_sa.request(
                        "PATCH",
                        f"/api/v1/nodes/{own}",
                        params=DRY_RUN,
                        body=unlabel,
                        content_type="application/merge-patch+json",
                    ),
                    NODE_WRITES,
                )
    finally:
        for path in (f"/api/v1/nodes/{other}", f"{LEASES}/{other}"):
            with suppress(KubeNotFound):
                await admin.delete(path)


async def test_a_node_removed_with_pods_running_is_drained_under_the_policy(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    admin = KubeClient(kube_api, node="test")
    prefix = f"d{uuid.uuid4().hex[:6]}"
    nodes = {f"{prefix}-a": f"{prefix}-pa", f"{prefix}-b": f"{prefix}-pb"}
    gone, kept = list(nodes)
    async with simulator(list(nodes.values())) as sim:
        values = release_values(sim, nodes, [namespace])
        async with running_release(
            kube_api, control_plane.kubeconfig, namespace, values, tmp_path
        ) as release:
            await eventually(lambda: schedulable(admin, list(nodes)), 30, "both nodes Ready")
            apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
            await admin.post(apps, workload("work", 2, node=gone))

            async def running_on_gone() -> bool:
                found = await pods(admin, namespace, "app=work")
                return len(found) == 2 and all(phase(p) == "Running" for p in found)

            await eventually(running_on_gone, 60, f"2 pods Running on {gone}")

            # `helm upgrade` without the node: the policy is re-rendered at once, before
            # the process even sees the new projects file; the removed node's name stays
            # in it because its Node still exists.
            smaller = {**values, "nodes": [n for n in values["nodes"] if n["name"] == kept]}
            objects = await release.upgrade(smaller)
            writes = one(objects, "ValidatingAdmissionPolicy", "-writes")
            listed = {v["name"]: v["expression"] for v in writes["spec"]["variables"]}
            assert gone in listed["nodes"]

            async def drained() -> bool:
                try:
                    await admin.get(f"/api/v1/nodes/{gone}")
                except KubeNotFound:
                    pass
                else:
                    return False
                left = sim.groups(ORG, nodes[gone], include_deleted=False)
                on_gone = [
                    p
                    for p in await pods(admin, namespace, "app=work")
                    if p["spec"].get("nodeName") == gone
                ]
                return not left and not on_gone

            await eventually(drained, 90, f"{gone} drained: pods and groups gone, Node deleted")
            with pytest.raises(KubeNotFound):
                await admin.get(f"{LEASES}/{gone}")
            # Every pod of the drained node went through salad-vk's graceful path, which
            # the policy let through: the node deleted each group before each pod.
            deleted = sim.groups(ORG, nodes[gone], include_deleted=True)
            assert len(deleted) == 2 and all(g.deleted for g in deleted)
