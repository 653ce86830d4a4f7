"""Editing the projects file adds, restarts and retires nodes without a restart of the
process — and an invalid edit changes nothing."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeNotFound
from tests.manifests import TOLERATION
from tests.nodes.harness import eventually, phase

from .harness import (
    ConfigMapDir,
    RunningSupervisor,
    projects_yaml,
    running_supervisor,
    simulator,
)

pytestmark = pytest.mark.anyio


def _names(prefix: str, count: int) -> dict[str, str]:
    return {f"{prefix}-{i}": f"{prefix}-p{i}" for i in range(count)}


async def _node_ready(running: RunningSupervisor, name: str) -> bool:
    try:
        node = await running.kube.get(f"/api/v1/nodes/{name}")
    except KubeNotFound:
        return False
    conditions = {c["type"]: c["status"] for c in node["status"].get("conditions") or []}
    return conditions.get("Ready") == "True" and running.supervisor.readiness().get(name, False)


async def test_nodes_follow_the_file_and_a_bad_edit_changes_nothing(
    kube_api: ApiClient, namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"r{uuid.uuid4().hex[:6]}"
    nodes = _names(prefix, 4)
    first_three = dict(list(nodes.items())[:3])
    fourth = list(nodes)[3]
    async with simulator(list(nodes.values())) as sim:
        config = ConfigMapDir(tmp_path / "config")
        keys = tmp_path / "keys"
        config.write(projects_yaml(sim, keys, first_three))
        async with running_supervisor(kube_api, config.path) as running:

            async def all_ready(names: list[str]) -> bool:
                return all([await _node_ready(running, n) for n in names])

            await eventually(lambda: all_ready(list(first_three)), 30, "3 nodes Ready")
            holders = {n: await running.lease_holder(n) for n in first_three}

            # Add a fourth project: it comes up, the others are not touched.
            config.write(projects_yaml(sim, keys, nodes))
            await eventually(lambda: _node_ready(running, fourth), 15, "the 4th node Ready")
            assert {n: await running.lease_holder(n) for n in first_three} == holders
            assert all(running.supervisor.slots[n].restarts == 0 for n in nodes)

            # Remove one that runs a pod: drained, its group deleted, Node and Lease gone.
            leaving = next(iter(first_three))
            await running.kube.post(
                f"/api/v1/namespaces/{namespace}/pods",
                {
                    "metadata": {"name": "resident"},
                    "spec": {
                        "nodeName": leaving,
                        "tolerations": [TOLERATION],
                        "containers": [{"name": "main", "image": "nginx", "command": ["nginx"]}],
                    },
                },
            )
            pod_path = f"/api/v1/namespaces/{namespace}/pods/resident"

            async def resident_running() -> bool:
                return phase(await running.kube.get(pod_path)) == "Running"

            await eventually(resident_running, 30, "the resident pod Running")
            staying = {n: p for n, p in nodes.items() if n != leaving}
            config.write(projects_yaml(sim, keys, staying))

            async def decommissioned() -> bool:
                for path in (
                    pod_path,
                    f"/api/v1/nodes/{leaving}",
                    f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{leaving}",
                ):
                    try:
                        await running.kube.get(path)
                    except KubeNotFound:
                        continue
                    return False
                return True

            await eventually(decommissioned, 60, f"{leaving} drained and deleted")
            groups = sim.groups("acme", nodes[leaving], include_deleted=True)
            assert groups and all(g.deleted for g in groups)
            assert leaving not in running.supervisor.slots

            # An invalid file: nothing changes, the error is logged with file and line.
            caplog.set_level(logging.ERROR)
            config.write("nodes:\n  - name: [unclosed\n")

            async def rejected() -> bool:
                return running.sample("salad_vk_config_reloads_total", {"result": "invalid"}) == 1

            await eventually(rejected, 10, "the invalid file counted")
            assert any(
                re.search(r"projects\.yaml:\d+: invalid YAML", r.getMessage()) and not r.exc_info
                for r in caplog.records
            ), [r.getMessage() for r in caplog.records]
            assert await all_ready(list(staying))
            assert set(running.supervisor.slots) == set(staying)

            # Fixed (with one more label): applied.
            extra = {fourth: {"labels": {"tier": "gold"}}}
            config.write(projects_yaml(sim, keys, staying, extra=extra))

            async def relabelled() -> bool:
                node = await running.kube.get(f"/api/v1/nodes/{fourth}")
                return bool(node["metadata"]["labels"].get("tier") == "gold")

            await eventually(relabelled, 15, "the fixed file applied")
            assert running.sample("salad_vk_config_reloads_total", {"result": "applied"}) >= 3
            for name in staying:
                await running.kube.delete(f"/api/v1/nodes/{name}")
