"""The per-key budget: never over the limit, mutations first, fair shares, safe cancels."""

from __future__ import annotations

import math

import anyio
import pytest
from pydantic import SecretStr

from nodes.saladcloud.ratelimit import (
    DEFAULT_HEADROOM,
    KeyBudget,
    KeyBudgets,
    NodeLimiter,
    Priority,
)

from .clocks import JumpClock, ManualClock, settle

TARGET = math.floor(240 * (1 - DEFAULT_HEADROOM))
"""Grants any 60 s may hold for a key of 240/min: the limit less the headroom."""

pytestmark = pytest.mark.anyio


def most_in_any_window(grants: list[float], window: float = 60.0) -> int:
    best = 0
    start = 0
    for end, moment in enumerate(grants):
        while grants[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def drain(budget: KeyBudget, limiter: NodeLimiter) -> None:
    """Use up the burst so that every further grant waits for a refill."""
    while budget._bucket.tokens >= 1.0:
        await limiter.acquire(Priority.MUTATION)


@pytest.mark.parametrize("limit", [240, 20, 7])
async def test_no_60_second_window_ever_sees_more_than_the_limit_minus_headroom(limit: int) -> None:
    clock = JumpClock()
    budget = KeyBudget(limit, clock=clock)
    limiter = budget.share("node-a")
    grants: list[float] = []

    while clock.now() < 600.0:
        await limiter.acquire(Priority.POLL)
        grants.append(clock.now())
        if len(grants) % (2 * limit) == 0:
            await clock.sleep(95.0)  # idle spells refill the burst, the worst case after them

    busiest = most_in_any_window(grants)
    assert busiest <= int(limit * 0.95)
    assert busiest >= int(limit * 0.95) - 2, "the budget is used, not wasted"


async def test_a_mutation_queued_behind_polls_is_granted_first() -> None:
    clock = ManualClock()
    budget = KeyBudget(60, clock=clock)
    nodes = {name: budget.share(name) for name in ("node-a", "node-b", "node-c")}
    await drain(budget, nodes["node-a"])
    order: list[str] = []

    async def ask(node: str, priority: Priority, label: str) -> None:
        await nodes[node].acquire(priority)
        order.append(label)

    async with anyio.create_task_group() as tasks:
        for round_ in range(3):
            for node in nodes:
                tasks.start_soon(ask, node, Priority.POLL, f"poll {node} {round_}")
        await settle()
        tasks.start_soon(ask, "node-c", Priority.MUTATION, "create")
        await settle()
        while len(order) < 10:
            await clock.advance(1.0)

    assert order[0] == "create"
    assert sorted(order[1:]) == sorted(f"poll {n} {r}" for r in range(3) for n in nodes)


async def test_log_reads_go_after_polls_and_mutations() -> None:
    clock = ManualClock()
    budget = KeyBudget(60, clock=clock)
    nodes = {name: budget.share(name) for name in ("node-a", "node-b")}
    await drain(budget, nodes["node-a"])
    order: list[str] = []

    async def ask(node: str, priority: Priority, label: str) -> None:
        await nodes[node].acquire(priority)
        order.append(label)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ask, "node-a", Priority.LOG, "log")
        await settle()
        tasks.start_soon(ask, "node-b", Priority.POLL, "poll")
        tasks.start_soon(ask, "node-b", Priority.MUTATION, "create")
        await settle()
        while len(order) < 3:
            await clock.advance(1.0)

    assert order == ["create", "poll", "log"]


async def test_log_reads_leave_half_the_burst_for_a_burst_of_mutations() -> None:
    clock = ManualClock()
    budget = KeyBudget(240, clock=clock)  # burst 10
    limiter = budget.share("node-a")
    logs = 0

    async def read_logs() -> None:
        nonlocal logs
        while True:
            await limiter.acquire(Priority.LOG)
            logs += 1

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read_logs)
        await settle()
        granted_at_once = logs
        creates = [await limiter.acquire(Priority.MUTATION) for _ in range(4)]
        tasks.cancel_scope.cancel()

    assert granted_at_once == 5, "log reads stop while 1 + 4.5 tokens are not there"
    assert creates == [0.0, 0.0, 0.0, 0.0], "creates find the reserve waiting"


async def test_nodes_of_one_priority_share_grants_by_weight() -> None:
    clock = ManualClock()
    budget = KeyBudget(120, clock=clock)
    light = budget.share("light", weight=1.0)
    heavy = budget.share("heavy", weight=2.0)
    await drain(budget, light)
    granted: list[str] = []

    async def poll_forever(limiter: NodeLimiter) -> None:
        while True:
            await limiter.acquire(Priority.POLL)
            granted.append(limiter.node)

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(poll_forever, light)
            tasks.start_soon(poll_forever, heavy)
        await settle()
        while len(granted) < 60:
            await clock.advance(0.5)
        tasks.cancel_scope.cancel()

    first = granted[:60]
    assert abs(first.count("heavy") - 40) <= 1
    assert abs(first.count("light") - 20) <= 1
    assert budget.fraction("heavy") == pytest.approx(2 / 3)


async def test_a_cancelled_wait_loses_no_token_and_does_not_wedge_the_queue() -> None:
    clock = ManualClock()
    budget = KeyBudget(60, clock=clock)
    limiter = budget.share("node-a")
    await drain(budget, limiter)
    results: list[str] = []

    async def waits(label: str, scope: anyio.CancelScope) -> None:
        with scope:
            await limiter.acquire(Priority.POLL)
            results.append(label)

    first, second = anyio.CancelScope(), anyio.CancelScope()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(waits, "first", first)
        await settle()
        tasks.start_soon(waits, "second", second)
        await settle()
        first.cancel()
        await settle()
        assert budget.waiting == 1
        refill = 1.0 / budget.requests_per_second
        await clock.advance(refill)

    assert results == ["second"], "the next waiter got the token the cancelled one would have"
    assert budget.waiting == 0
    await clock.advance(refill)
    with anyio.fail_after(1):
        await limiter.acquire(Priority.POLL)  # the token that accrued meanwhile is still there


async def test_penalize_pauses_every_node_of_the_key() -> None:
    clock = JumpClock()
    budget = KeyBudget(240, clock=clock)
    a, b = budget.share("node-a"), budget.share("node-b")
    await a.acquire(Priority.POLL)

    budget.penalize(30.0)
    waited = await b.acquire(Priority.MUTATION)

    assert waited >= 30.0
    assert clock.now() >= 30.0


async def test_acquire_reports_the_time_it_waited() -> None:
    clock = JumpClock()
    budget = KeyBudget(60, clock=clock)
    limiter = budget.share("node-a")
    assert await limiter.acquire(Priority.POLL) == 0.0
    await drain(budget, limiter)

    waited = await limiter.acquire(Priority.POLL)

    assert waited == pytest.approx(1.0 / budget.requests_per_second)


async def test_polling_interval_stretches_as_nodes_join_the_key() -> None:
    budget = KeyBudget(240)
    budget.share("node-a")
    alone = budget.poll_interval("node-a")
    budget.share("node-b")
    budget.share("node-c")

    assert budget.poll_interval("node-a") == pytest.approx(alone * 3)
    assert budget.fraction("node-b") == pytest.approx(1 / 3)
    with pytest.raises(KeyError):
        budget.poll_interval("node-z")


async def test_a_closed_share_is_returned_to_the_others() -> None:
    budget = KeyBudget(240)
    a = budget.share("node-a")
    budget.share("node-b")

    a.close()

    assert budget.nodes == ("node-b",)
    assert budget.fraction("node-b") == 1.0
    with pytest.raises(RuntimeError):
        await a.acquire(Priority.POLL)


async def test_a_node_sharing_again_replaces_its_old_share() -> None:
    budget = KeyBudget(240)
    old = budget.share("node-a")
    new = budget.share("node-a", weight=2.0)

    old.close()  # the old holder going away must not remove the new one

    assert budget.nodes == ("node-a",)
    assert new.weight == 2.0


def test_budgets_are_one_per_key_and_url_and_never_hold_the_key() -> None:
    budgets = KeyBudgets()
    secret = "sk-live-never-print-me-0123456789"

    first = budgets.budget_for(SecretStr(secret), "https://api.salad.com/api/public", 240)
    same = budgets.budget_for(secret, "https://api.salad.com/api/public/", 240)
    other_key = budgets.budget_for("another-key", "https://api.salad.com/api/public", 240)
    other_url = budgets.budget_for(secret, "http://127.0.0.1:8787/api/public", 240)

    assert first is same
    assert other_key is not first and other_url is not first
    assert len(budgets) == 3
    assert secret not in repr(budgets)
    assert all(secret not in key for key in budgets._budgets)


def test_the_last_configured_limit_of_a_key_wins() -> None:
    budgets = KeyBudgets()
    budget = budgets.budget_for("k", "u", 240)

    budgets.budget_for("k", "u", 120)

    assert budget.requests_per_minute == 120
    assert budget.requests_per_second == pytest.approx((114 - 5) / 60)


def test_unused_budgets_can_be_forgotten() -> None:
    budgets = KeyBudgets()
    kept = budgets.budget_for("k1", "u", 240)
    kept.share("node-a")
    budgets.budget_for("k2", "u", 240)

    assert budgets.discard_unused() == 1
    assert len(budgets) == 1


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        KeyBudget(1)
    with pytest.raises(ValueError, match="headroom"):
        KeyBudget(240, headroom=1.0)
    with pytest.raises(ValueError, match="positive"):
        KeyBudget(240).share("node-a", weight=0)


# --- several replicas on one key --------------------------------------------------------


async def test_replicas_sharing_a_key_stay_under_its_limit_together() -> None:
    """Six nodes on one key, two per replica, every node polling flat out."""
    clock = ManualClock()
    replicas = [KeyBudget(240, clock=clock) for _ in range(3)]
    grants: list[float] = []

    async def poll_forever(limiter: NodeLimiter) -> None:
        while True:
            await limiter.acquire(Priority.POLL)
            grants.append(clock.now())

    async with anyio.create_task_group() as tasks:
        for index, budget in enumerate(replicas):
            budget.set_total_weight(6.0)
            for node in range(2):
                tasks.start_soon(poll_forever, budget.share(f"node-{index}-{node}"))
        await settle()
        while clock.now() < 300.0:
            await clock.advance(0.25)
        tasks.cancel_scope.cancel()

    grants.sort()
    busiest = most_in_any_window(grants)
    assert busiest <= TARGET, busiest
    assert busiest >= 200, "each replica uses its part, not less"


def test_a_replicas_part_is_the_weight_it_serves_over_the_keys_total() -> None:
    budget = KeyBudget(240)
    budget.set_total_weight(6.0)
    first = budget.share("node-a")
    budget.share("node-b", weight=2.0)
    assert budget.part == pytest.approx(0.5)
    target = TARGET * 0.5
    burst = 5.0
    assert budget.requests_per_second == pytest.approx((target - burst) / 60)

    first.close()  # handed off: its part leaves with it, at once
    assert budget.part == pytest.approx(1 / 3)
    assert budget.requests_per_second == pytest.approx((TARGET / 3 - 3) / 60)

    budget.set_total_weight(None)  # a lone process serves the whole key
    assert budget.part == 1.0


def test_a_part_that_grows_refills_faster_but_gets_no_tokens() -> None:
    clock = ManualClock()
    budget = KeyBudget(240, clock=clock)
    budget.set_total_weight(10.0)
    budget.share("node-a")
    assert budget._bucket.tokens == pytest.approx(1.0)
    budget.share("node-b")
    budget.share("node-c")
    assert budget._bucket.tokens == pytest.approx(1.0)
    assert budget.part == pytest.approx(0.3)


def test_a_part_too_small_for_a_burst_keeps_one_token_and_a_refill() -> None:
    budget = KeyBudget(240)
    budget.set_total_weight(500.0)
    budget.share("node-a")
    assert budget._bucket.burst == 1.0
    assert budget.requests_per_second == pytest.approx(TARGET / 500 / 60)


def test_budgets_learn_the_keys_totals_from_the_whole_file() -> None:
    budgets = KeyBudgets()
    early = budgets.budget_for("k1", "u", 240)
    budgets.set_total_weights([("k1", "u", 1.0), ("k1", "u/", 2.0), ("k2", "u", 1.0)])
    late = budgets.budget_for("k2", "u", 240)
    early.share("node-a")
    late.share("node-b")
    assert early.part == pytest.approx(1 / 3)
    assert late.part == 1.0
