"""Followed logs share an API key's budget without starving what the nodes must do."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import anyio
import httpx
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from tests.nodes.harness import eventually
from tests.supervisor.harness import ORG

from .harness import SHARED_KEY, kubelet_rig
from .test_access import PROXY

pytestmark = pytest.mark.anyio

LIMIT = 480
"""Requests per minute of the shared key, at the simulator and in the projects file."""
FOLLOWERS = 20
PODS = 100


async def test_twenty_followers_on_a_key_leave_creates_and_the_nodes_list_alone(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    prefix = f"kb{uuid.uuid4().hex[:5]}"
    busy, quiet = f"{prefix}-busy", f"{prefix}-quiet"
    nodes = {busy: f"{prefix}-p0", quiet: f"{prefix}-p1"}
    async with kubelet_rig(
        kube_api,
        kubeconfig,
        namespace,
        tmp_path,
        nodes,
        simulator_options={"rate-limit": LIMIT, "log-rate": 2},
        shared_key=True,
        api_rate_limit=LIMIT,
        kubelet_follow_interval_seconds=0.5,
    ) as rig:
        followed = await rig.pod(quiet)
        token = await rig.token("follower", PROXY)
        url = f"{rig.url}/containerLogs/{namespace}/{followed['metadata']['name']}/main"
        received = [0] * FOLLOWERS

        async with (
            httpx.AsyncClient(verify=False, timeout=httpx.Timeout(30, read=None)) as http,
            anyio.create_task_group() as followers,
        ):
            headers = {"Authorization": f"Bearer {token}"}

            async def follow(index: int) -> None:
                async with http.stream("GET", url + "?follow=true", headers=headers) as stream:
                    assert stream.status_code == 200
                    async for _ in stream.aiter_lines():
                        received[index] += 1

            for index in range(FOLLOWERS):
                followers.start_soon(follow, index)

            async def reading() -> bool:
                return all(received)

            await eventually(reading, 30, "every follower reading")
            one_too_many = await http.get(url + "?follow=true", headers=headers)

            started = anyio.current_time()

            async def create(n: int) -> None:
                await rig.pod(busy, f"{prefix}-{n}", wait=False)

            async with anyio.create_task_group() as creating:
                for n in range(PODS):
                    creating.start_soon(create, n)

            async def all_created() -> bool:
                groups = rig.sim.groups(ORG, nodes[busy], include_deleted=False)
                return len(groups) == PODS

            await eventually(all_created, 180, f"{PODS} container groups created")
            created_in = anyio.current_time() - started
            lines_before = sum(received)
            await anyio.sleep(8.0)
            steady_lines = sum(received) - lines_before
            followers.cancel_scope.cancel()

        stats = rig.sim.key_stats(SHARED_KEY)
        lists = [
            r.wall
            for r in rig.sim.requests(SHARED_KEY)
            if r.method == "GET" and r.path.endswith(f"/projects/{nodes[busy]}/containers")
        ]

    steady = [at for at in lists if at >= lists[-1] - 7.0]
    gaps = [b - a for a, b in itertools.pairwise(steady)]
    print(
        f"\n{PODS} creates in {created_in:.1f}s with {FOLLOWERS} followers;"
        f" {stats.requests} requests on the key, {stats.rate_limited} answered 429;"
        f" steady list gaps max {max(gaps):.2f}s; {steady_lines} lines followed in 8 s"
    )
    assert one_too_many.status_code == 429
    assert "20 at most" in one_too_many.text
    assert stats.rate_limited == 0, "no 429"
    assert len(rig.sim.groups(ORG, nodes[busy], include_deleted=False)) == PODS
    assert max(gaps) <= 1.0 + 1.0, "the node lists every poll interval (1 s), followers or not"
    assert steady_lines > 0, "the followers still read"
