"""After a lease lapse, Ready comes back as soon as the node can say so (issue 15.1).

The node lifecycle controller sets Ready=Unknown and taints the node unreachable when
the Lease stops moving. Only the node can take that back, by posting Ready again;
it must notice from the Node on the server, not from what it last wrote itself.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from tests.controlplane.cluster import ControlPlane
from tests.tcp_proxy import TcpProxy, tcp_proxy

from .harness import eventually, node_settings, running_node, simulator, unique_project

pytestmark = pytest.mark.anyio

UNREACHABLE = "node.kubernetes.io/unreachable"


@asynccontextmanager
async def through(proxy: TcpProxy, plane: ControlPlane) -> AsyncIterator[ApiClient]:
    """A Kubernetes client whose every connection goes through ``proxy``."""
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(plane.kubeconfig), client_configuration=configuration
    )
    configuration.host = f"https://127.0.0.1:{proxy.port}"
    async with ApiClient(configuration=configuration) as api:
        yield api


def ready(node: dict[str, Any]) -> str:
    for condition in node["status"].get("conditions") or []:
        if condition["type"] == "Ready":
            return str(condition["status"])
    return "missing"


def unreachable_taints(node: dict[str, Any]) -> list[str]:
    return [t["effect"] for t in node["spec"].get("taints") or [] if t["key"] == UNREACHABLE]


async def test_ready_and_the_taints_come_back_within_15s_of_a_healed_partition(
    kube_api: ApiClient, control_plane: ControlPlane
) -> None:
    admin = KubeClient(kube_api, node="test")
    server = urlsplit(control_plane.server)
    project = unique_project()
    async with (
        simulator(project) as sim,
        tcp_proxy(str(server.hostname), int(server.port or 443)) as proxy,
        through(proxy, control_plane) as proxied,
        running_node(proxied, sim, node_settings(project)) as n,
    ):
        path = f"/api/v1/nodes/{n.name}"

        async def is_ready() -> bool:
            found = await admin.get(path)
            return ready(found) == "True" and not unreachable_taints(found)

        async def settled() -> bool:
            # Nothing left for the node to write: a pending write would repair Ready by
            # accident, and hide whether the node notices the lapse itself.
            found = await admin.get(path)
            reasons = {c["type"]: c["reason"] for c in found["status"]["conditions"]}
            return await is_ready() and reasons.get("SaladCloudReachable") == "APIReachable"

        await eventually(settled, 30, "the node Ready, SaladCloud reachable, status written")
        proxy.cut()

        async def lapsed() -> bool:
            found = await admin.get(path)
            return ready(found) == "Unknown" and bool(unreachable_taints(found))

        await eventually(lapsed, 60, "Ready=Unknown and the unreachable taint")
        proxy.heal()
        healed_at = time.monotonic()
        await eventually(is_ready, 15, "Ready=True without unreachable taints again")
        print(f"repaired {time.monotonic() - healed_at:.1f}s after the partition healed")
