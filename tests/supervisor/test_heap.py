"""Once every node serves, the heap is frozen out of the collector's full walks."""

from __future__ import annotations

import contextlib
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


def _churn(threshold: int) -> list[list[object]]:
    """Three times the young threshold in container objects, all kept alive."""
    return [[] for _ in range(3 * threshold)]


def test_no_collection_starts_while_paused_and_they_resume_after(
    collections_seen: list[int],
) -> None:
    young = gc.get_threshold()[0]
    with heap.collections_paused():
        collections_seen.clear()  # what the test runner did before the pause
        kept = _churn(young)
        assert collections_seen == []
    assert gc.isenabled()
    kept += _churn(young)
    assert 0 in collections_seen, "allocations after the pause collect as before"


def test_overlapping_pauses_resume_collections_when_the_last_one_ends(
    collections_seen: list[int],
) -> None:
    with contextlib.ExitStack() as second:
        with heap.collections_paused():
            collections_seen.clear()
            second.enter_context(heap.collections_paused())
        assert not gc.isenabled(), "the second render is still under way"
        kept = _churn(gc.get_threshold()[0])
        assert collections_seen == []
    assert gc.isenabled()
    del kept


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_renders_that_keep_overlapping_hold_the_collector_off_only_so_long(
    collections_seen: list[int],
) -> None:
    clock = Clock()
    with contextlib.ExitStack() as renders:
        renders.enter_context(heap.collections_paused(clock))
        clock.now = heap.LONGEST_PAUSE / 2
        renders.enter_context(heap.collections_paused(clock))
        assert not gc.isenabled()
        clock.now = heap.LONGEST_PAUSE + 1
        renders.enter_context(heap.collections_paused(clock))
        assert gc.isenabled(), "a pause begun after LONGEST_PAUSE lets collections run"
        kept = _churn(gc.get_threshold()[0])
        assert 0 in collections_seen
    assert gc.isenabled()
    del kept


def test_a_pause_that_ends_after_longest_pause_lets_collections_run_meanwhile(
    collections_seen: list[int],
) -> None:
    clock = Clock()
    with contextlib.ExitStack() as last:
        with heap.collections_paused(clock):
            last.enter_context(heap.collections_paused(clock))
            clock.now = heap.LONGEST_PAUSE + 1
        assert gc.isenabled(), "the render still under way no longer holds it off"
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_stays_off(collections_seen: list[int]) -> None:
    gc.disable()
    try:
        with heap.collections_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_pause_that_ends_in_an_error_resumes_collections(collections_seen: list[int]) -> None:
    with pytest.raises(RuntimeError), heap.collections_paused():
        raise RuntimeError("the scraper went away")
    assert gc.isenabled()
