"""Nodes sharing one key against the simulator's per-key limit, with time sped up.

Both sides read one ``FastClock`` (20x), so the simulator's 60-second window passes
in 3 real seconds, and a limit of 20 requests per minute is 20 per 3 real seconds,
well below what three nodes polling every 100 ms ask for (30 per second).
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from nodes.saladcloud.client import RetryPolicy, SaladClient
from nodes.saladcloud.errors import SaladRateLimited
from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.simulator import running_simulator

from .builders import KEY, ORG, PROJECT, QUICK_RETRY, client, options, prototype
from .clocks import FastClock

pytestmark = pytest.mark.anyio

LIMIT = 20
SPEEDUP = 20.0
NODES = ("node-a", "node-b", "node-c")


async def test_three_nodes_polling_every_100ms_on_one_key_draw_no_429() -> None:
    clock = FastClock(SPEEDUP)
    polls = dict.fromkeys(NODES, 0)
    async with (
        running_simulator(options(**{"rate-limit": LIMIT}), monotonic=clock.now) as sim,
        httpx.AsyncClient() as http,
    ):
        budget = KeyBudget(LIMIT, clock=clock)
        clients = {
            node: client(http, sim.url, budget, node=node, retry=QUICK_RETRY) for node in NODES
        }

        async def poll(node: str, salad: SaladClient) -> None:
            while True:
                await salad.list_container_groups()  # SaladRateLimited would end the test
                polls[node] += 1
                await anyio.sleep(0.1)

        with anyio.move_on_after(4.5):  # 90 s of key time: one and a half windows
            async with anyio.create_task_group() as tasks:
                for node, salad in clients.items():
                    tasks.start_soon(poll, node, salad)

        stats = sim.key_stats(KEY)
        served = [r.wall for r in sim.requests(KEY)]

    assert stats.rate_limited == 0
    assert stats.requests == sum(polls.values())
    assert all(count >= 5 for count in polls.values()), f"every node got its turns: {polls}"
    assert sum(polls.values()) < 3 * 45 / 2, "the limiter, not the nodes' pace, set the rate"
    busiest = max(sum(1 for t in served if start <= t < start + 60.0) for start in served)
    assert busiest <= LIMIT


async def test_a_create_queued_behind_polls_reaches_the_server_first() -> None:
    clock = FastClock(SPEEDUP)
    async with (
        running_simulator(options(**{"rate-limit": LIMIT}), monotonic=clock.now) as sim,
        httpx.AsyncClient() as http,
    ):
        budget = KeyBudget(LIMIT, clock=clock)
        clients = {
            node: client(http, sim.url, budget, node=node, retry=QUICK_RETRY) for node in NODES
        }
        budget.penalize(6.0)  # as after a 429: nothing goes out for 0.3 real seconds

        async with anyio.create_task_group() as tasks:
            for salad in clients.values():
                tasks.start_soon(salad.list_container_groups)
            await anyio.sleep(0.05)
            assert budget.waiting == 3
            tasks.start_soon(clients["node-b"].create_container_group, prototype("pod-1"))

        methods = [r.method for r in sim.requests(KEY)]

    assert methods[0] == "POST"
    assert methods.count("GET") == 3
    assert sim.group(ORG, PROJECT, "pod-1").name == "pod-1"


async def test_a_node_that_ignores_the_shared_budget_would_be_refused() -> None:
    """The counter-test: without a shared budget the same traffic does draw 429s."""
    clock = FastClock(SPEEDUP)
    async with (
        running_simulator(options(**{"rate-limit": LIMIT}), monotonic=clock.now) as sim,
        httpx.AsyncClient() as http,
    ):
        # one budget per node: each thinks it has the whole key to itself
        once = RetryPolicy(max_attempts=1)
        clients = [
            client(http, sim.url, KeyBudget(LIMIT, clock=clock), node=node, retry=once)
            for node in NODES
        ]
        refused = 0

        async def poll(salad: SaladClient) -> None:
            nonlocal refused
            try:
                await salad.list_container_groups()
            except SaladRateLimited:
                refused += 1

        async with anyio.create_task_group() as tasks:
            for salad in clients:
                for _ in range(8):  # 24 in under a minute of key time: over the 20
                    tasks.start_soon(poll, salad)

    assert refused > 0
    assert sim.key_stats(KEY).rate_limited == refused
