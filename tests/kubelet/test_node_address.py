"""A node advertises only its InternalIP and the kubelet port, even over an old Node."""

from __future__ import annotations

from dataclasses import replace

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from nodes.node_object import node_manifest
from tests.nodes.harness import node_settings, running_node, simulator, unique_project

pytestmark = pytest.mark.anyio


async def test_a_hostname_address_written_by_an_older_version_goes(kube_api: ApiClient) -> None:
    project = unique_project()
    settings = replace(node_settings(project), node_ip="192.0.2.10", kubelet_port=31250)
    kube = KubeClient(kube_api, node="test")
    await kube.post("/api/v1/nodes", node_manifest(settings))
    await kube.patch(
        f"/api/v1/nodes/{settings.name}/status",
        {
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "192.0.2.9"},
                    {"type": "Hostname", "address": settings.name},
                ]
            }
        },
    )
    async with simulator(project) as sim, running_node(kube_api, sim, settings):
        node = await kube.get(f"/api/v1/nodes/{settings.name}")

    assert node["status"]["addresses"] == [{"type": "InternalIP", "address": "192.0.2.10"}]
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 31250}}
