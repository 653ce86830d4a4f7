"""A release of the chart, run the way its pod runs it, but in-process.

The identity objects the chart renders (ServiceAccount, ClusterRole, Role and their
bindings, the FlowSchema) are created for real; the supervisor runs in this process
with an ``ApiClient`` that impersonates the chart's ServiceAccount, so every call it
makes is authorized by the chart's RBAC and nothing else. Its projects file is the
chart's ConfigMap, with each API key file laid out where the chart mounts its Secret.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeError, KubeNotFound
from nodes.saladcloud.simulator import Simulator
from tests.nodes.harness import eventually
from tests.supervisor.harness import (
    ConfigMapDir,
    RunningSupervisor,
    key_of,
    running_supervisor,
)

from .chart import Manifest, node, one, projects_file, render
from .kube import create, delete_all, impersonating, service_account_identity

# Where the chart mounts the API-key Secrets in the pod (templates/_helpers.tpl).
KEYS_DIR = "/etc/salad-vk/keys"
IDENTITY_KINDS = (
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "FlowSchema",
)


@dataclass
class Release:
    name: str
    namespace: str
    values: dict[str, Any]
    objects: list[Manifest]
    config: ConfigMapDir
    keys_root: Path
    service_account: str
    supervisor: RunningSupervisor
    as_service_account: KubeClient

    def deliver(self, objects: list[Manifest]) -> None:
        """Deliver a re-rendered ConfigMap the way the kubelet does (a ``..data`` swap)."""
        self.config.write(mounted_projects_file(objects, self.keys_root))


def release_values(sim: Simulator, nodes: Mapping[str, str], **more: Any) -> dict[str, Any]:
    """Chart values serving ``nodes`` (name -> project) from the simulator."""
    return {
        "saladApiUrl": sim.url,
        "nodeDefaults": {"pollInterval": 1},
        "nodes": [node(name, project) for name, project in nodes.items()],
        **more,
    }


def mounted_projects_file(objects: list[Manifest], keys_root: Path) -> str:
    """The chart's projects file, its key paths moved from the pod's mount to ``keys_root``."""
    return projects_file(objects).replace(KEYS_DIR + "/", f"{keys_root}/")


def lay_out_keys(values: Mapping[str, Any], root: Path) -> None:
    """Each node's key file, where the chart's Secret volume puts it."""
    for entry in values["nodes"]:
        secret = entry["apiKeySecret"]
        path = root / secret["name"] / secret["key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key_of(entry["project"]) + "\n")


@asynccontextmanager
async def running_release(
    kube_api: ApiClient,
    kubeconfig: Path,
    namespace: str,
    values: dict[str, Any],
    work: Path,
) -> AsyncIterator[Release]:
    admin = KubeClient(kube_api, node="test")
    name = f"r{uuid.uuid4().hex[:6]}"
    objects = render(values, release=name, namespace=namespace)
    identity = [o for o in objects if o["kind"] in IDENTITY_KINDS]
    service_account = one(objects, "ServiceAccount")["metadata"]["name"]
    cluster_scoped = [
        o for o in identity if o["metadata"].get("namespace") in (None, "kube-node-lease")
    ]
    try:
        for manifest in identity:
            await create(admin, manifest)
        user, groups = service_account_identity(namespace, service_account)
        async with impersonating(kubeconfig, user, groups) as as_sa_api:
            as_sa = KubeClient(as_sa_api, node="test")

            async def authorized() -> bool:
                # RBAC reaches the authorizer through its informers: wait for it.
                try:
                    await as_sa.get("/api/v1/pods", {"limit": "1"})
                except KubeError as error:
                    if error.status != 403:
                        raise
                    return False
                return True

            await eventually(authorized, 10, "the chart's RBAC to take effect")
            config = ConfigMapDir(work / "config")
            keys_root = work / "keys"
            lay_out_keys(values, keys_root)
            config.write(mounted_projects_file(objects, keys_root))
            # As in the pod: the membership Leases live in the release namespace.
            async with running_supervisor(
                as_sa_api, config.path, lease_namespace=namespace
            ) as supervisor:
                yield Release(
                    name=name,
                    namespace=namespace,
                    values=values,
                    objects=objects,
                    config=config,
                    keys_root=keys_root,
                    service_account=service_account,
                    supervisor=supervisor,
                    as_service_account=as_sa,
                )
    finally:
        for entry in values["nodes"]:
            with suppress(KubeNotFound):
                await admin.delete(f"/api/v1/nodes/{entry['name']}")
        await delete_all(admin, cluster_scoped)
