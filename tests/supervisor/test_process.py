"""``salad-vk run`` as a process: killed mid-burst it converges on restart, stopped by
SIGTERM it exits 0 without deleting anything, and its logs never carry a key."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from nodes.ownership import owner_of
from nodes.saladcloud.models import ContainerGroup
from nodes.saladcloud.simulator import Simulator
from tests.controlplane.cluster import ControlPlane
from tests.nodes.harness import deployment, eventually, phase, pods

from .harness import ORG, ConfigMapDir, key_of, projects_yaml, salad_vk_run, simulator

pytestmark = pytest.mark.anyio

BURST = 50
JSON_LOGS = ("--log-format", "json")


def live_groups(sim: Simulator, project: str) -> list[ContainerGroup]:
    return [
        ContainerGroup.model_validate(g.document)
        for g in sim.groups(ORG, project, include_deleted=False)
    ]


async def test_kill_9_mid_burst_then_restart_converges_and_sigterm_deletes_nothing(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    name = f"k{uuid.uuid4().hex[:6]}"
    project = f"{name}-p"
    log = tmp_path / "salad-vk.log"
    kube = KubeClient(kube_api, node="test")
    async with simulator([project]) as sim:
        config = ConfigMapDir(tmp_path / "config")
        config.write(projects_yaml(sim, tmp_path / "keys", {name: project}))

        async def node_ready() -> bool:
            try:
                node = await kube.get(f"/api/v1/nodes/{name}")
                lease = await kube.get(
                    f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
                )
            except Exception:
                return False
            ready = {c["type"]: c["status"] for c in node["status"].get("conditions") or []}
            return ready.get("Ready") == "True" and bool(lease["spec"].get("renewTime"))

        async with salad_vk_run(config.path, control_plane.kubeconfig, log, *JSON_LOGS) as first:
            await eventually(node_ready, 30, "the node registered")
            await kube.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                deployment("burst", name, BURST),
            )

            async def mid_burst() -> bool:
                return len(live_groups(sim, project)) >= BURST // 3

            await eventually(mid_burst, 60, "the burst under way")
            first.send_signal(signal.SIGKILL)
            await first.wait()
        created_before_kill = len(live_groups(sim, project))
        assert created_before_kill < BURST, "the kill must land in the middle of the burst"

        async with salad_vk_run(config.path, control_plane.kubeconfig, log, *JSON_LOGS) as second:

            async def converged() -> bool:
                found = await pods(kube, namespace, "app=burst")
                groups = live_groups(sim, project)
                if len(found) != BURST or len(groups) != BURST:
                    return False
                if any(
                    phase(p) != "Running" or p["metadata"].get("deletionTimestamp") for p in found
                ):
                    return False
                owners = [owner_of(g) for g in groups]
                uids = {p["metadata"]["uid"] for p in found}
                return (
                    all(o is not None for o in owners)
                    and {o.uid for o in owners if o is not None} == uids
                )

            await eventually(converged, 120, f"{BURST} pods Running, one group each")
            assert not sim.groups(ORG, project, include_deleted=True)[BURST:], "nothing deleted"

            second.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                code = await second.wait()
            assert code == 0
        assert len(live_groups(sim, project)) == BURST, "stopping deleted nothing"

        async with salad_vk_run(config.path, control_plane.kubeconfig, log, *JSON_LOGS) as third:
            await kube.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/burst")

            async def cleaned_up() -> bool:
                return not await pods(kube, namespace, "app=burst") and not live_groups(
                    sim, project
                )

            await eventually(cleaned_up, 90, "every pod and group gone")
            third.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                assert await third.wait() == 0
    await kube.delete(f"/api/v1/nodes/{name}")

    text = log.read_text()
    assert key_of(project) not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, "the process logged JSON lines"
    about_the_node = [entry for entry in lines if entry.get("node") == name]
    assert about_the_node and all(entry.get("project") for entry in about_the_node)
