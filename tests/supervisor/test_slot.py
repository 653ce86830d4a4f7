"""A failing node is restarted with growing, capped backoff; cancellation stops it."""

from __future__ import annotations

import itertools

import anyio
import pytest
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry

from nodes.lease import LeaseLost
from supervisor.metrics import ProcessMetrics
from supervisor.slot import NodeSlot

pytestmark = pytest.mark.anyio


class Crashing:
    ready = False

    def __init__(self, log: list[float]) -> None:
        self._log = log

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._log.append(anyio.current_time())
        raise RuntimeError("boom")


class Serving:
    ready = True

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await anyio.sleep_forever()


async def test_a_crashing_node_is_restarted_with_doubling_capped_backoff() -> None:
    starts: list[float] = []
    registry = CollectorRegistry()
    slot = NodeSlot(
        "n",
        "p",
        lambda: Crashing(starts),
        metrics=ProcessMetrics(registry),
        backoff_initial=0.02,
        backoff_max=0.08,
    )
    async with anyio.create_task_group() as group:
        group.start_soon(slot.run)
        with anyio.fail_after(5):
            while len(starts) < 6:
                await anyio.sleep(0.01)
        slot.stop()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Jitter draws each delay from [d/2, d]: the cap bounds every gap from above.
    assert all(gap <= 0.08 + 0.05 for gap in gaps)
    assert gaps[0] < gaps[-1] + 0.05
    assert slot.restarts >= 5
    assert (registry.get_sample_value("salad_vk_node_restarts_total", {"node": "n"}) or 0) >= 5
    assert slot.stopped.is_set()


async def test_a_serving_node_is_ready_and_stops_on_cancel() -> None:
    slot = NodeSlot("n", "p", Serving)
    async with anyio.create_task_group() as group:
        group.start_soon(slot.run)
        with anyio.fail_after(2):
            await slot.serving.wait()
        assert slot.ready
        slot.stop()
        with anyio.fail_after(2):
            await slot.stopped.wait()
    assert not slot.ready
    assert slot.restarts == 0


async def test_one_slot_crash_looping_does_not_touch_a_sibling() -> None:
    starts: list[float] = []
    crashing = NodeSlot(
        "bad", "p", lambda: Crashing(starts), backoff_initial=0.01, backoff_max=0.02
    )
    healthy = NodeSlot("good", "p", Serving)
    async with anyio.create_task_group() as group:
        group.start_soon(crashing.run)
        group.start_soon(healthy.run)
        with anyio.fail_after(5):
            while len(starts) < 10:
                await anyio.sleep(0.01)
        assert healthy.ready
        assert healthy.restarts == 0
        group.cancel_scope.cancel()


class Losing:
    """A node whose Lease is lost, first for want of a renewal in time, then taken."""

    ready = False

    def __init__(self, kinds: list[str]) -> None:
        self._kinds = kinds

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        kind = self._kinds.pop(0)
        raise LeaseLost(f"lost ({kind})", kind=kind)


@pytest.mark.parametrize("reclaim", [False, True])
async def test_a_lease_lost_in_time_ends_the_slot_unless_it_is_being_decommissioned(
    reclaim: bool,
) -> None:
    kinds = ["deadline", "taken"]
    built: list[int] = []

    def build() -> Losing:
        built.append(1)
        return Losing(kinds)

    slot = NodeSlot("n", "p", build, backoff_initial=0.001, backoff_max=0.001)
    slot.reclaim_after_deadline = reclaim
    with anyio.fail_after(5):
        await slot.run()
    if reclaim:
        # Claimed again after the deadline; only another holder ends it.
        assert len(built) == 2 and slot.lost is not None and slot.lost.kind == "taken"
    else:
        assert len(built) == 1 and slot.lost is not None and slot.lost.kind == "deadline"
