"""The Node and its Lease carry the process's ``node-restriction.kubernetes.io/salad-vk``
label, including objects an earlier version wrote without it: the chart's admission
policy lets the process write only objects that carry it."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from nodes.settings import MANAGED_BY_LABEL

from .harness import eventually, node_settings, running_node, simulator, unique_project

pytestmark = pytest.mark.anyio

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


async def labels_of(kube: KubeClient, path: str) -> dict[str, str]:
    return dict((await kube.get(path))["metadata"].get("labels") or {})


async def test_a_new_node_writes_the_label_on_its_node_and_its_lease(kube_api: ApiClient) -> None:
    project = unique_project()
    settings = node_settings(project, managed_by="ops.salad-vk")
    async with simulator(project) as sim, running_node(kube_api, sim, settings) as running:
        node_labels = await labels_of(running.kube, f"/api/v1/nodes/{running.name}")
        lease_labels = await labels_of(running.kube, f"{LEASES}/{running.name}")

    assert node_labels[MANAGED_BY_LABEL] == "ops.salad-vk"
    assert lease_labels[MANAGED_BY_LABEL] == "ops.salad-vk"


async def test_a_node_and_lease_written_without_the_label_are_labelled_when_adopted(
    kube_api: ApiClient,
) -> None:
    project = unique_project()
    async with simulator(project) as sim:
        async with running_node(kube_api, sim, node_settings(project), keep_node=True) as first:
            name, kube = first.name, first.kube
        assert MANAGED_BY_LABEL not in await labels_of(kube, f"/api/v1/nodes/{name}")
        assert MANAGED_BY_LABEL not in await labels_of(kube, f"{LEASES}/{name}")

        settings = node_settings(project, managed_by="ops.salad-vk")
        async with running_node(kube_api, sim, settings):

            async def labelled() -> bool:
                for path in (f"/api/v1/nodes/{name}", f"{LEASES}/{name}"):
                    if (await labels_of(kube, path)).get(MANAGED_BY_LABEL) != "ops.salad-vk":
                        return False
                return True

            await eventually(labelled, 20, "the Node and the Lease labelled")
