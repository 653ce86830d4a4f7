"""Never delete what cannot be proven orphaned (DESIGN.md, "Decisions easy to get wrong")."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.cluster import read_cluster_facts
from nodes.kube import KubeClient
from nodes.ownership import CLUSTER_VAR, NAME_VAR, NAMESPACE_VAR, NODE_VAR, UID_VAR
from nodes.translate import container_group_name

from .harness import (
    deployment,
    eventually,
    node_settings,
    phase,
    plant_group,
    pods,
    running_node,
    simulator,
    unique_project,
)

pytestmark = pytest.mark.anyio

MIN_AGE = 3.0


async def test_a_restarted_node_keeps_live_groups_and_collects_only_a_proven_orphan(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    settings = node_settings(project, orphan_min_age=MIN_AGE)
    async with simulator(project) as sim:
        async with running_node(kube_api, sim, settings, keep_node=True) as first:
            kube = first.kube
            await kube.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                deployment("live", settings.name, 3),
            )

            async def three_running() -> bool:
                found = await pods(kube, namespace, "app=live")
                return len(found) == 3 and all(phase(p) == "Running" for p in found)

            await eventually(three_running, 60, "3 live pods Running")
            live = {g.name for g in first.groups()}

        cluster = (await read_cluster_facts(kube)).id
        ghost_uid = str(uuid.uuid4())
        orphan = container_group_name(namespace, "ghost", ghost_uid)
        marks = {NAMESPACE_VAR: namespace, NAME_VAR: "ghost", UID_VAR: ghost_uid}
        ours = {**marks, NODE_VAR: settings.name, CLUSTER_VAR: cluster}
        await plant_group(sim, project, orphan, ours)
        other_node = container_group_name(namespace, "elsewhere", str(uuid.uuid4()))
        await plant_group(sim, project, other_node, {**ours, NODE_VAR: "another-node"})
        # A staging cluster serving the same project under the same node name.
        other_cluster = container_group_name(namespace, "staging", str(uuid.uuid4()))
        await plant_group(sim, project, other_cluster, {**ours, CLUSTER_VAR: str(uuid.uuid4())})
        foreign = "made-by-hand"
        await plant_group(sim, project, foreign, {})

        started = time.monotonic()
        async with running_node(kube_api, sim, settings) as second:

            async def orphan_deleted() -> bool:
                return orphan in {g.name for g in second.groups(deleted=True)}

            await eventually(orphan_deleted, 30, "the orphaned group deleted")
            assert time.monotonic() - started >= MIN_AGE
            # Give the collector a few more passes to make any mistake it would make.
            await anyio.sleep(2 * settings.poll_interval)
            remaining = {g.name for g in second.groups()}
            assert live | {other_node, other_cluster, foreign} == remaining
            node_events = await kube.get(
                "/api/v1/namespaces/default/events",
                {"fieldSelector": f"involvedObject.name={settings.name}"},
            )
            reasons = [(e["reason"], e["message"]) for e in node_events["items"]]
            assert any(r == "OrphanedContainerGroupDeleted" and orphan in m for r, m in reasons), (
                reasons
            )


async def test_nothing_is_collected_before_the_pod_cache_holds_a_complete_list(
    kube_api: ApiClient, namespace: str
) -> None:
    """The pod watch has not listed yet (start-up, a relist after an error): an empty
    cache is no evidence, so even a group whose pod never existed stays."""
    project = unique_project()
    settings = node_settings(project, orphan_min_age=0.0)
    async with simulator(project) as sim:
        uid = str(uuid.uuid4())
        orphan = container_group_name(namespace, "ghost", uid)
        marks = {NAMESPACE_VAR: namespace, NAME_VAR: "ghost", UID_VAR: uid, NODE_VAR: settings.name}
        cluster = await read_cluster_facts(KubeClient(kube_api, node="test"))
        await plant_group(sim, project, orphan, {**marks, CLUSTER_VAR: cluster.id})
        async with running_node(kube_api, sim, settings) as node:
            reconciler = node.node.reconciler
            node.node.pods.synced = False  # as while a relist is in progress
            async with anyio.create_task_group() as actions:
                for _ in range(3):
                    await reconciler._list()
                    assert reconciler._listing is not None
                    reconciler._pass(actions, reconciler._listing)
                    await anyio.sleep(settings.poll_interval)
            assert orphan in {g.name for g in node.groups()}
