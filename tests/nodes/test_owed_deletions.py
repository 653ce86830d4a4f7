"""A deletion the node owes is never forgotten (issue 15.2).

A pod force-deleted while SaladCloud fails leaves nothing in Kubernetes to remind the
node of its group. The deletion is kept as a debt on the node's Node object and
retried until SaladCloud confirms it, across a restart too.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from nodes.owed_deletions import ANNOTATION
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

FAULTY_FOR = 8.0
"""How long SaladCloud answers every request with an error after the force delete."""
CONFIRMED_WITHIN = 30.0


def worker(name: str, node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "tolerations": [TOLERATION],
            "containers": [{"name": "main", "image": "nginx:1.27", "command": ["nginx"]}],
        },
    }


async def debts_on_node(kube: KubeClient, node: str) -> list[dict[str, str]]:
    found = await kube.get(f"/api/v1/nodes/{node}")
    text = (found["metadata"].get("annotations") or {}).get(ANNOTATION)
    return list(json.loads(text)) if text else []


async def running_pod(n: RunningNode, namespace: str, name: str) -> str:
    """Start a pod on ``n``; return its group's name once it runs."""
    await n.kube.post(f"/api/v1/namespaces/{namespace}/pods", worker(name, n.name))
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"

    async def running() -> bool:
        return phase(await n.kube.get(path)) == "Running"

    await eventually(running, 30, f"pod {name} Running")
    (group,) = n.groups()
    return str(group.name)


async def force_delete_while_saladcloud_fails(n: RunningNode, namespace: str, name: str) -> None:
    n.sim.set_faults(error_rate=1.0)
    await n.kube.delete(
        f"/api/v1/namespaces/{namespace}/pods/{name}",
        {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0},
    )

    async def recorded() -> bool:
        return any(d["pod"] == f"{namespace}/{name}" for d in await debts_on_node(n.kube, n.name))

    await eventually(recorded, 10, "the owed deletion written on the Node")


async def test_a_deletion_that_failed_is_retried_until_saladcloud_confirms_it(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    async with simulator(project) as sim, running_node(kube_api, sim, node_settings(project)) as n:
        group = await running_pod(n, namespace, "forced")
        await force_delete_while_saladcloud_fails(n, namespace, "forced")
        await anyio.sleep(FAULTY_FOR)
        assert [g.name for g in n.groups()] == [group], "nothing got through the faults"
        assert n.registry.get_sample_value("salad_vk_owed_deletions", {"node": n.name}) == 1
        sim.set_faults(error_rate=0.0)
        cleared = time.monotonic()

        async def paid() -> bool:
            return not n.groups() and not await debts_on_node(n.kube, n.name)

        await eventually(paid, CONFIRMED_WITHIN, "the group deleted and the debt settled")
        print(f"deleted {time.monotonic() - cleared:.1f}s after the faults cleared")


async def test_a_restarted_node_pays_the_debts_of_the_one_before(
    kube_api: ApiClient, namespace: str
) -> None:
    """The first incarnation stops for good during the faults (its tasks, its memory
    gone, as after a kill); a new one, reading only the Node, deletes the group."""
    project = unique_project()
    settings = node_settings(project)
    async with simulator(project) as sim:
        async with running_node(kube_api, sim, settings, keep_node=True) as first:
            await running_pod(first, namespace, "forced")
            await force_delete_while_saladcloud_fails(first, namespace, "forced")
        await anyio.sleep(FAULTY_FOR)
        async with running_node(kube_api, sim, settings) as second:
            assert len(second.groups()) == 1
            sim.set_faults(error_rate=0.0)

            async def paid() -> bool:
                return not second.groups() and not await debts_on_node(second.kube, second.name)

            await eventually(paid, CONFIRMED_WITHIN, "the group deleted by the new incarnation")


async def test_a_forged_debt_never_deletes_a_live_pods_group(
    kube_api: ApiClient, namespace: str
) -> None:
    """The annotation is ordinary Node metadata: whoever may patch Nodes can write it.
    A debt read back from it is paid only for a group whose own marks name a pod that
    is gone; this one names a live pod (the debt lies about which pod)."""
    project = unique_project()
    settings = node_settings(project)
    async with simulator(project) as sim:
        async with running_node(kube_api, sim, settings, keep_node=True) as first:
            group = await running_pod(first, namespace, "victim")
            victim = await first.kube.get(f"/api/v1/namespaces/{namespace}/pods/victim")
            forged = [{"group": group, "uid": victim["metadata"]["uid"], "pod": f"{namespace}/x"}]
            await first.kube.patch(
                f"/api/v1/nodes/{first.name}",
                {"metadata": {"annotations": {ANNOTATION: json.dumps(forged)}}},
                kind="merge",
            )
        async with running_node(kube_api, sim, settings) as second:

            async def dropped() -> bool:
                return not await debts_on_node(second.kube, second.name)

            await eventually(dropped, 20, "the forged debt dropped")
            assert [g.name for g in second.groups()] == [group], "the live pod's group stays"
