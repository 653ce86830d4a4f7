"""Two replicas whose files differ for a while, as a ``helm upgrade`` reaches them one
after the other: a node goes only to a replica that lists it, and only its owner
decommissions it, once no replica lists it any more."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeNotFound
from tests.nodes.harness import eventually

from .harness import (
    ConfigMapDir,
    RunningSupervisor,
    projects_yaml,
    running_supervisor,
    simulator,
)

pytestmark = pytest.mark.anyio


async def holder_of(running: RunningSupervisor, node: str) -> str:
    """The identity holding ``node``'s Lease; '' when released or absent."""
    try:
        lease = await running.kube.get(
            f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"
        )
    except KubeNotFound:
        return ""
    return str(lease["spec"].get("holderIdentity") or "").split("/", maxsplit=1)[0]


async def test_a_node_goes_only_to_replicas_that_list_it_and_its_owner_retires_it_last(
    kube_api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    prefix = f"s{uuid.uuid4().hex[:6]}"
    nodes = {f"{prefix}-{i}": f"{prefix}-p{i}" for i in range(4)}
    extra = {f"{prefix}-only-a": f"{prefix}-pa"}
    async with simulator([*nodes.values(), *extra.values()]) as sim:
        files = {x: ConfigMapDir(tmp_path / x) for x in "ab"}
        for x in "ab":
            files[x].write(projects_yaml(sim, tmp_path / "keys", nodes))
        async with (
            running_supervisor(
                kube_api, files["a"].path, identity="replica-a", lease_namespace=namespace
            ) as a,
            running_supervisor(
                kube_api, files["b"].path, identity="replica-b", lease_namespace=namespace
            ) as b,
        ):

            async def shared_two_each() -> bool:
                held = [await holder_of(a, n) for n in nodes]
                members = (a.supervisor.membership_problem(), b.supervisor.membership_problem())
                return sorted(held) == ["replica-a"] * 2 + ["replica-b"] * 2 and members == (
                    None,
                    None,
                )

            await eventually(shared_two_each, 60, "two nodes each")

            # A node only replica-a's file lists is replica-a's, whatever the balance.
            files["a"].write(projects_yaml(sim, tmp_path / "keys", {**nodes, **extra}))
            (only_a,) = extra

            async def served_by_a() -> bool:
                return await holder_of(a, only_a) == "replica-a" and only_a in a.supervisor.slots

            await eventually(served_by_a, 30, "the node only replica-a lists served by it")
            assert only_a not in b.supervisor.slots
            assert b.supervisor.plan[only_a] == "replica-a"  # b computes the same

            # Removed from one file only: its owner keeps serving it, nobody takes it.
            held_by_a = [n for n in nodes if await holder_of(a, n) == "replica-a"]
            leaving = held_by_a[0]
            rest = {n: p for n, p in nodes.items() if n != leaving}
            files["a"].write(projects_yaml(sim, tmp_path / "keys", {**rest, **extra}))

            async def reloaded() -> bool:
                config = a.supervisor.config
                return config is not None and leaving not in config.nodes_by_name

            await eventually(reloaded, 10, "replica-a read its new file")
            for _ in range(6):
                assert await holder_of(a, leaving) == "replica-a"
                assert leaving in a.supervisor.slots
                await anyio.sleep(0.5)

            # Removed from every file: its owner decommissions it, and nobody takes it.
            files["b"].write(projects_yaml(sim, tmp_path / "keys", rest))

            async def decommissioned() -> bool:
                try:
                    await a.kube.get(f"/api/v1/nodes/{leaving}")
                except KubeNotFound:
                    return await holder_of(a, leaving) == ""
                return False

            await eventually(decommissioned, 60, "the removed node decommissioned by its owner")
            assert leaving not in a.supervisor.slots and leaving not in b.supervisor.slots
            assert a.sample("salad_vk_node_decommissions_total", {"policy": "drain"}) == 1
            assert b.sample("salad_vk_node_decommissions_total", {"policy": "drain"}) == 0
        for name in [*rest, *extra]:
            try:
                await a.kube.delete(f"/api/v1/nodes/{name}")
            except KubeNotFound:
                continue
