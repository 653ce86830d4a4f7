"""A Deployment spread over every node of the process, scaled as KEDA scales it."""

from __future__ import annotations

import collections
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from tests.manifests import CONTAINER, label_in, workload
from tests.nodes.harness import eventually, phase, pods

from .harness import (
    ORG,
    ConfigMapDir,
    projects_yaml,
    running_supervisor,
    schedulable,
    simulator,
)

pytestmark = pytest.mark.anyio


def spread_deployment(name: str, projects: list[str]) -> dict[str, Any]:
    match = [label_in("type", ["virtual-kubelet"]), label_in("salad.com/project", projects)]
    container = {**CONTAINER, "image": "worker:1", "command": ["/worker"]}
    return workload(name, 0, match=match, spread_over="salad.com/project", container=container)


async def test_scaling_0_30_0_through_the_scale_subresource_spreads_and_cleans_up(
    kube_api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    prefix = f"s{uuid.uuid4().hex[:6]}"
    nodes = {f"{prefix}-{i}": f"{prefix}-p{i}" for i in range(3)}
    projects = list(nodes.values())
    async with simulator(projects) as sim:
        config = ConfigMapDir(tmp_path / "config")
        config.write(projects_yaml(sim, tmp_path / "keys", nodes))
        async with running_supervisor(kube_api, config.path) as running:
            kube = running.kube

            async def ready() -> bool:
                return await schedulable(running.kube, list(nodes))

            await eventually(ready, 30, "3 nodes Ready and schedulable")
            apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
            await kube.post(apps, spread_deployment("scaled", projects))

            async def scale(replicas: int) -> None:
                # What KEDA (and the HPA it drives) does: write the scale subresource.
                await kube.patch(
                    f"{apps}/scaled/scale", {"spec": {"replicas": replicas}}, kind="merge"
                )

            await scale(30)

            async def thirty_running() -> bool:
                found = await pods(kube, namespace, "app=scaled")
                return len(found) == 30 and all(phase(p) == "Running" for p in found)

            await eventually(thirty_running, 90, "30 pods Running")
            per_node = collections.Counter(
                p["spec"]["nodeName"] for p in await pods(kube, namespace, "app=scaled")
            )
            assert per_node == dict.fromkeys(nodes, 10)
            per_project = {p: len(sim.groups(ORG, p, include_deleted=False)) for p in projects}
            assert per_project == dict.fromkeys(projects, 10)

            await scale(0)

            async def all_gone() -> bool:
                left = await pods(kube, namespace, "app=scaled")
                groups = sum(len(sim.groups(ORG, p, include_deleted=False)) for p in projects)
                return not left and groups == 0

            await eventually(all_gone, 90, "no pod and no group left")
            for name in nodes:
                await kube.delete(f"/api/v1/nodes/{name}")
