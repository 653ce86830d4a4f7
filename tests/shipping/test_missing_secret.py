"""One missing key Secret stops one node, not the release; ``salad-vk drain --all``
then empties every node through the running supervisor, as the uninstall hook does."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeNotFound
from nodes.settings import UNAVAILABLE_TAINT_KEY
from tests.controlplane.cluster import ControlPlane
from tests.manifests import workload
from tests.nodes.harness import eventually, phase, pods
from tests.supervisor.harness import ORG, key_of, simulator

from .release import release_values, running_release

pytestmark = pytest.mark.anyio


async def node_state(kube: KubeClient, name: str) -> tuple[str, dict[str, Any], set[str]]:
    """Ready's status, the conditions by type and the taint keys (empty: not registered)."""
    try:
        node = await kube.get(f"/api/v1/nodes/{name}")
    except KubeNotFound:
        return "", {}, set()
    conditions = {c["type"]: c for c in node["status"].get("conditions") or []}
    taints = {t["key"] for t in node["spec"].get("taints") or []}
    return conditions.get("Ready", {}).get("status", ""), conditions, taints


async def test_a_node_whose_secret_is_missing_waits_tainted_while_the_others_serve(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    admin = KubeClient(kube_api, node="test")
    prefix = f"m{uuid.uuid4().hex[:6]}"
    nodes = {f"{prefix}-{x}": f"{prefix}-p{x}" for x in "abc"}
    (a, b, c), projects = list(nodes), list(nodes.values())
    apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    async with simulator(projects) as sim:
        values = release_values(sim, nodes, [namespace])
        async with running_release(
            kube_api, control_plane.kubeconfig, namespace, values, tmp_path, missing_keys={c}
        ) as release:

            async def two_serve_one_waits() -> bool:
                states = {name: await node_state(admin, name) for name in nodes}
                ready = all(state[0] == "True" for state in states.values())
                if not ready:
                    return False
                served = all(
                    states[n][1]["SaladCloudReachable"]["reason"] == "APIReachable" for n in (a, b)
                )
                waiting = states[c][1]["SaladCloudReachable"]
                return (
                    ready
                    and served
                    and waiting["status"] == "False"
                    and waiting["reason"] == "APIKeyMissing"
                    and UNAVAILABLE_TAINT_KEY in states[c][2]
                    and not any(UNAVAILABLE_TAINT_KEY in states[n][2] for n in (a, b))
                )

            await eventually(two_serve_one_waits, 60, "a and b serving, c Ready but keyless")
            _, conditions, _ = await node_state(admin, c)
            message = conditions["SaladCloudReachable"]["message"]
            missing = release.keys_root / "salad-api-keys" / nodes[c]
            assert message.startswith(f"no API key: file {missing} does not exist;")
            assert "without a restart" in message
            calls = [r for r in sim.requests() if f"/projects/{nodes[c]}/" in r.path]
            assert calls == [], "no SaladCloud call without a key"

            for name in nodes:
                await admin.post(apps, workload(f"w-{name}", 1, node=name))

            async def running_on(*names: str) -> bool:
                for name in names:
                    found = await pods(admin, namespace, f"app=w-{name}")
                    if len(found) != 1 or phase(found[0]) != "Running":
                        return False
                return True

            await eventually(lambda: running_on(a, b), 60, "a pod Running on a and on b")
            (waiting_pod,) = await pods(admin, namespace, f"app=w-{c}")
            assert phase(waiting_pod) == "Pending"
            assert not waiting_pod["spec"].get("nodeName"), "the taint keeps it off c"

            # The Secret is created: the kubelet writes the key file into the mount.
            missing.write_text(key_of(nodes[c]) + "\n")
            with anyio.fail_after(60):
                await eventually(lambda: running_on(c), 60, "c serving its pod")
            _, conditions, taints = await node_state(admin, c)
            assert conditions["SaladCloudReachable"]["reason"] == "APIReachable"
            assert UNAVAILABLE_TAINT_KEY not in taints

            # What the uninstall hook runs: every node emptied, every group deleted by
            # the running supervisor.
            command = [
                sys.executable,
                "-m",
                "supervisor",
                "drain",
                "--all",
                "--config",
                str(release.config.path),
                "--kubeconfig",
                str(control_plane.kubeconfig),
                "--timeout-seconds",
                "90",
            ]
            drained = await anyio.run_process(command, check=False)
            out = drained.stdout.decode()
            assert drained.returncode == 0, out + drained.stderr.decode()
            assert out.rstrip().endswith("drained 3 nodes: no pod left")
            assert not [g for p in projects for g in sim.groups(ORG, p, include_deleted=False)]
            for name in nodes:
                node = await admin.get(f"/api/v1/nodes/{name}")
                assert node["spec"].get("unschedulable") is True
