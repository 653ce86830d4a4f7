"""A node's first list ranks with the mutations of its key, not with the polls.

A node decides nothing until it has listed its project once. When that list waited at
poll rank, a node that started while another node on its key had a burst of creates
queued did nothing until the whole burst was sent: in the 20-nodes-on-one-key
benchmark, eight nodes created their first pod 35 s after the burst began.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.simulator import Simulator

from .harness import (
    deployment,
    eventually,
    node_settings,
    running_node,
    simulator,
    unique_project,
)

pytestmark = pytest.mark.anyio

CREATES = 6


async def test_a_starting_node_lists_among_the_creates_already_queued_on_its_key(
    kube_api: ApiClient, namespace: str
) -> None:
    busy, starting = unique_project(), unique_project()
    budget = KeyBudget(6000)
    async with (
        simulator(busy, starting) as sim,
        running_node(kube_api, sim, node_settings(busy), budget=budget) as first,
    ):
        await eventually(_sent(sim, "GET", busy), timeout=10, what=f"{busy}'s first list")
        # As after a 429: nothing is granted for a while, so what follows queues. The
        # busy node's next poll queues too.
        budget.penalize(8.0)
        apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
        await first.kube.post(apps, deployment("burst", first.name, CREATES))
        await eventually(_waiting(budget, CREATES + 1), timeout=10, what="the creates queued")
        budget.penalize(10.0)  # long enough for the second node to start, on a slow machine
        async with running_node(kube_api, sim, node_settings(starting), budget=budget):
            await eventually(
                _waiting(budget, CREATES + 2), timeout=10, what="the new node's list queued"
            )
            await eventually(_sent(sim, "POST", busy, CREATES), timeout=20, what="the creates")
            await eventually(_sent(sim, "GET", starting), timeout=20, what="the first list")
            served = [(r.method, _project(r.path)) for r in sim.requests()]

    first_list = served.index(("GET", starting))
    last_create = max(i for i, request in enumerate(served) if request == ("POST", busy))
    assert first_list < last_create, (
        "the new node's first list went out after every create queued before it: "
        f"{served[-CREATES - 3 :]}"
    )


def _project(path: str) -> str:
    parts = path.split("/")
    return parts[parts.index("projects") + 1] if "projects" in parts else ""


def _sent(
    sim: Simulator, method: str, project: str, count: int = 1
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        sent = [r for r in sim.requests() if r.method == method and _project(r.path) == project]
        return len(sent) >= count

    return check


def _waiting(budget: KeyBudget, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return budget.waiting >= count

    return check
