"""The test control plane is Kubernetes' own: its controllers and scheduler really run."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient

from tests.controlplane import cluster

pytestmark = pytest.mark.anyio

TAINT_KEY = "virtual-kubelet.io/provider"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    with anyio.move_on_after(timeout) as scope:
        while not await check():
            await anyio.sleep(0.25)
    if scope.cancelled_caught:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


async def _register_node(core: client.CoreV1Api, name: str) -> client.V1Node:
    body: Any = {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"taints": [{"key": TAINT_KEY, "value": "saladcloud", "effect": "NoSchedule"}]},
    }
    node = await core.create_node(body)
    now = _now().isoformat()
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "test keeps the lease renewed",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }
    resources = {"cpu": "8", "memory": "32Gi", "pods": "10"}
    await core.patch_node_status(
        name,
        {"status": {"conditions": [ready], "capacity": resources, "allocatable": resources}},
    )
    return node


async def _renew_lease_forever(coordination: client.CoordinationV1Api, node: Any) -> None:
    name = node.metadata.name
    lease: Any = {
        "metadata": {
            "name": name,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node.metadata.uid}
            ],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": 40,
            "renewTime": _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }
    await coordination.create_namespaced_lease("kube-node-lease", lease)
    while True:
        await anyio.sleep(1)
        await coordination.patch_namespaced_lease(
            name,
            "kube-node-lease",
            {"spec": {"renewTime": _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
        )


async def test_scheduler_binds_replicaset_pods_and_lifecycle_controller_notices_silence(
    kube_api: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    apps = client.AppsV1Api(kube_api)
    coordination = client.CoordinationV1Api(kube_api)
    node_name = f"cp-proof-{namespace}"
    node = await _register_node(core, node_name)
    try:
        async with anyio.create_task_group() as renewing:
            renewing.start_soon(_renew_lease_forever, coordination, node)

            deployment: Any = {
                "metadata": {"name": "proof"},
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": {"app": "proof"}},
                    "template": {
                        "metadata": {"labels": {"app": "proof"}},
                        "spec": {
                            "nodeSelector": {"kubernetes.io/hostname": node_name},
                            "tolerations": [
                                {
                                    "key": TAINT_KEY,
                                    "operator": "Equal",
                                    "value": "saladcloud",
                                    "effect": "NoSchedule",
                                }
                            ],
                            "containers": [{"name": "main", "image": "busybox"}],
                        },
                    },
                },
            }
            await apps.create_namespaced_deployment(namespace, deployment)

            async def three_pods_bound_to_node() -> bool:
                pods = await core.list_namespaced_pod(namespace, label_selector="app=proof")
                return len(pods.items) == 3 and all(
                    p.spec.node_name == node_name for p in pods.items
                )

            await _eventually(three_pods_bound_to_node, 60, "3 pods bound to the node")
            renewing.cancel_scope.cancel()

        async def marked_unknown_and_tainted_unreachable() -> bool:
            current = await core.read_node(node_name)
            ready = next(c for c in current.status.conditions if c.type == "Ready")
            taints = {t.key for t in current.spec.taints or []}
            return ready.status == "Unknown" and "node.kubernetes.io/unreachable" in taints

        await _eventually(
            marked_unknown_and_tainted_unreachable,
            60,
            "Ready=Unknown and the unreachable taint after the lease stopped",
        )
    finally:
        await core.delete_node(node_name)


def test_cli_up_serves_readyz_and_down_stops_every_process(tmp_path: Path) -> None:
    folder = tmp_path / "cp"
    up = subprocess.run(
        [sys.executable, "-m", "tests.controlplane", "up", "--dir", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert up.returncode == 0, up.stderr
    kubeconfig = Path(up.stdout.strip())
    assert kubeconfig == folder.resolve() / "kubeconfig"
    pids = [p["pid"] for p in json.loads((folder / cluster.STATE_FILE).read_text())["processes"]]
    try:
        kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
        readyz = subprocess.run(
            [kubectl, "get", "--raw", "/readyz"],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert readyz.stdout.strip() == "ok", readyz.stderr
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "tests.controlplane", "down", "--dir", str(folder)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert down.returncode == 0, down.stderr
    assert cluster.running(folder) == []
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"pid {pid} survived down"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
