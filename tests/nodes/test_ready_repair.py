"""After a lease lapse, Ready comes back as soon as the node can say so (issue 15.1).

The node lifecycle controller sets Ready=Unknown and taints the node unreachable when
the Lease stops moving. Only the node can take that back, by posting Ready again;
it must notice from the Node on the server, not from what it last wrote itself.
The whole process is cut off here, as a network partition would: its membership
lapses, its nodes fence themselves, and all of that must heal by itself.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from tests.controlplane.cluster import ControlPlane
from tests.supervisor.harness import ConfigMapDir, projects_yaml, running_supervisor, simulator
from tests.tcp_proxy import TcpProxy, tcp_proxy

from .harness import eventually, node_settings, running_node, unique_project
from .harness import simulator as node_simulator

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


async def partition_until_unknown(proxy: TcpProxy, admin: KubeClient, path: str) -> None:
    """Cut the node off until the lifecycle controller says Unknown and taints it
    unreachable, then heal the partition."""
    proxy.cut()

    async def lapsed() -> bool:
        found = await admin.get(path)
        return ready(found) == "Unknown" and bool(unreachable_taints(found))

    await eventually(lapsed, 60, "Ready=Unknown and the unreachable taint")
    proxy.heal()


async def test_ready_and_the_taints_come_back_within_15s_of_a_healed_partition(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    admin = KubeClient(kube_api, node="test")
    server = urlsplit(control_plane.server)
    project = unique_project()
    name = f"salad-{project}"
    async with (
        simulator([project]) as sim,
        tcp_proxy(str(server.hostname), int(server.port or 443)) as proxy,
        through(proxy, control_plane) as proxied,
    ):
        files = ConfigMapDir(tmp_path / "config")
        files.write(projects_yaml(sim, tmp_path / "keys", {name: project}))
        async with running_supervisor(proxied, files.path, lease_namespace=namespace):
            path = f"/api/v1/nodes/{name}"

            async def is_ready() -> bool:
                try:
                    found = await admin.get(path)
                except Exception:
                    return False
                return ready(found) == "True" and not unreachable_taints(found)

            async def settled() -> bool:
                # Nothing left for the node to write: a pending write would repair Ready
                # by accident, and hide whether the node notices the lapse itself.
                if not await is_ready():
                    return False
                found = await admin.get(path)
                reasons = {c["type"]: c["reason"] for c in found["status"]["conditions"]}
                return reasons.get("SaladCloudReachable") == "APIReachable"

            await eventually(settled, 60, "the node Ready, SaladCloud reachable, status written")
            await partition_until_unknown(proxy, admin, path)
            healed_at = time.monotonic()
            await eventually(is_ready, 15, "Ready=True without unreachable taints again")
            print(f"repaired {time.monotonic() - healed_at:.1f}s after the partition healed")


async def test_a_node_that_kept_its_lease_repairs_ready_from_the_server_node(
    kube_api: ApiClient, control_plane: ControlPlane
) -> None:
    """The same lapse for a node whose ownership outlasts it (a long ownership timeout):
    it is not restarted, so only its comparison with the server's Node can see that
    the controller rewrote Ready."""
    admin = KubeClient(kube_api, node="test")
    server = urlsplit(control_plane.server)
    project = unique_project()
    settings = node_settings(project, ownership_timeout=300.0)
    async with (
        node_simulator(project) as sim,
        tcp_proxy(str(server.hostname), int(server.port or 443)) as proxy,
        through(proxy, control_plane) as proxied,
        running_node(proxied, sim, settings) as n,
    ):
        path = f"/api/v1/nodes/{n.name}"

        async def settled() -> bool:
            found = await admin.get(path)
            reasons = {c["type"]: c["reason"] for c in found["status"]["conditions"]}
            return (
                ready(found) == "True"
                and not unreachable_taints(found)
                and reasons.get("SaladCloudReachable") == "APIReachable"
            )

        await eventually(settled, 30, "the node Ready, SaladCloud reachable, status written")
        await partition_until_unknown(proxy, admin, path)

        async def repaired() -> bool:
            found = await admin.get(path)
            return ready(found) == "True" and not unreachable_taints(found)

        await eventually(repaired, 15, "Ready=True without unreachable taints again")
        assert n.node.lease.last_renewal is not None
