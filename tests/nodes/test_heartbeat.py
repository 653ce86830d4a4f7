"""The lease keeps its rhythm whatever the pods do: Ready never depends on pod work."""

from __future__ import annotations

import itertools
from datetime import datetime

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from .harness import (
    deployment,
    eventually,
    node_settings,
    phase,
    pods,
    running_node,
    simulator,
    unique_project,
)

pytestmark = pytest.mark.anyio

BURST = 100
LIMIT = 240
"""SaladCloud's real per-key budget, on both sides: the burst is paced as in production."""


async def test_a_burst_of_100_pods_never_delays_the_lease_or_draws_a_429(
    kube_api: ApiClient, namespace: str
) -> None:
    project = unique_project()
    settings = node_settings(project, poll_interval=2.0)
    async with (
        simulator(project, **{"rate-limit": LIMIT}) as sim,
        running_node(kube_api, sim, settings, requests_per_minute=LIMIT) as node,
    ):
        kube = node.kube
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
        renewals: list[datetime] = []
        not_ready: list[str] = []

        async def watch_heartbeat() -> None:
            while True:
                lease = await kube.get(lease_path)
                renewed = datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
                if not renewals or renewed != renewals[-1]:
                    renewals.append(renewed)
                current = await kube.get(f"/api/v1/nodes/{node.name}")
                for condition in current["status"]["conditions"]:
                    if condition["type"] == "Ready" and condition["status"] != "True":
                        not_ready.append(condition["status"])
                await anyio.sleep(0.5)

        async with anyio.create_task_group() as watching:
            watching.start_soon(watch_heartbeat)
            await kube.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                deployment("burst", node.name, BURST),
            )

            async def all_running() -> bool:
                found = await pods(kube, namespace, "app=burst")
                return len(found) == BURST and all(phase(p) == "Running" for p in found)

            await eventually(all_running, 180, f"{BURST} pods Running")
            watching.cancel_scope.cancel()

        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(renewals)]
        assert len(renewals) >= 3
        assert max(gaps) < 15, f"lease renewal gaps: {gaps}"
        assert not_ready == []
        throttled = [r for r in sim.requests() if r.status == 429]
        assert throttled == []
        assert len(node.groups()) == BURST
