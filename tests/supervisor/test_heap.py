"""Once every node serves, the heap is frozen out of the collector's full walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import anyio
import pytest

from supervisor import heap

pytestmark = pytest.mark.anyio


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_the_heap_is_frozen_once_every_node_serves(unfrozen: None) -> None:
    serving = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(heap.freeze_when_settled, serving.wait)
        await anyio.wait_all_tasks_blocked()
        assert gc.get_freeze_count() == 0, "nothing is frozen while nodes still start"
        serving.set()
    assert gc.get_freeze_count() > 0


async def test_a_node_that_never_serves_does_not_keep_the_heap_unfrozen(unfrozen: None) -> None:
    never = anyio.Event()
    with anyio.fail_after(5):
        await heap.freeze_when_settled(never.wait, at_most=0.05)
    assert gc.get_freeze_count() > 0


def test_young_generations_are_collected_less_often(unfrozen: None) -> None:
    heap.tune()
    assert gc.get_threshold() == heap.THRESHOLDS
    assert all(
        tuned > default for tuned, default in zip(heap.THRESHOLDS, (700, 10, 10), strict=True)
    )


async def test_a_handoff_thaws_the_heap_and_it_is_frozen_again_once_quiet(unfrozen: None) -> None:
    async def settled() -> None:
        pass

    async with anyio.create_task_group() as group:
        group.start_soon(lambda: heap.keep_frozen(settled, quiet=0.3, check_every=0.05))
        with anyio.fail_after(5):
            while not gc.get_freeze_count():
                await anyio.sleep(0.01)

        heap.release_frozen()  # a slot ended
        assert gc.get_freeze_count() == 0
        await anyio.sleep(0.2)
        heap.release_frozen()  # another, in the same burst of handoffs
        await anyio.sleep(0.2)
        assert gc.get_freeze_count() == 0, "not frozen again while nodes still move"
        with anyio.fail_after(5):
            while not gc.get_freeze_count():
                await anyio.sleep(0.05)
        group.cancel_scope.cancel()
