"""The cyclic garbage collector, tuned for a process that holds a thousand nodes.

With default thresholds, a profile (py-spy ``--native``) of 1,000 nodes put 32 % of
the process's CPU in the collector: every full collection walks every tracked
object, and a thousand nodes' clients, tasks, caches and metrics are over a million
of them, nearly all alive for as long as the process is. Two changes:

- younger generations are collected less often (a request's objects mostly die
  before a collection, instead of being promoted and walked again and again);
- once the nodes are serving, what exists then is frozen (``gc.freeze``): moved
  out of the collector's sight, it is no longer walked by full collections.
  Objects freed by reference counting are freed as before; only reference cycles
  among objects alive at the freeze are kept for good, and those are the
  long-lived structures of the process.

And one pause: a ``/metrics`` render (``collections_paused``). See there.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

import anyio

log = logging.getLogger(__name__)

THRESHOLDS = (20_000, 20, 50)
"""Allocations before a young collection; young collections before a middle one;
middle ones before a full one (defaults: 700, 10, 10)."""


def tune() -> None:
    gc.set_threshold(*THRESHOLDS)


async def freeze_when_settled(
    settled: Callable[[], Awaitable[None]], *, at_most: float = 120.0
) -> None:
    """Freeze the heap once ``settled()`` returns (every node serving), or after
    ``at_most`` seconds, whichever comes first."""
    with anyio.move_on_after(at_most):
        await settled()
    gc.collect()
    gc.freeze()
    log.info("heap settled: %d objects frozen out of the collector's walks", gc.get_freeze_count())


class _Thaws:
    """How many times a stopped node thawed the heap. The collector is one per
    process, so this count is too."""

    count = 0


def release_frozen() -> None:
    """A node this process served has stopped (a handoff, a removal): its objects,
    frozen with everything else, hold reference cycles only the collector can free.
    Unfreezing hands every frozen object back to the oldest generation; the next full
    collection frees what is garbage and walks the rest again, as before the freeze."""
    _Thaws.count += 1
    if gc.get_freeze_count():
        gc.unfreeze()


async def keep_frozen(
    settled: Callable[[], Awaitable[None]],
    *,
    at_most: float = 120.0,
    quiet: float = 30.0,
    check_every: float = 5.0,
) -> None:
    """Freeze once settled, and again after every thaw, once the nodes have stopped
    coming and going for ``quiet`` seconds: with several replicas, handoffs come in
    bursts soon after start, and a heap thawed for good would put the collector back
    on every long-lived object of a thousand nodes."""
    while True:
        await freeze_when_settled(settled, at_most=at_most)
        seen = _Thaws.count
        while _Thaws.count == seen:
            await anyio.sleep(check_every)
        while True:  # churn: wait for a quiet spell
            seen = _Thaws.count
            await anyio.sleep(quiet)
            if _Thaws.count == seen:
                break


LONGEST_PAUSE = 10.0
"""Seconds after which overlapping pauses stop holding the collector off."""


class _Pause:
    """Renders under way (they overlap when two scrapers ask at once), whether the
    collector was on when the first began, and when that was."""

    depth = 0
    resume = False
    since = 0.0


@contextlib.contextmanager
def collections_paused(clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """No automatic collection inside: for work that allocates many short-lived
    objects, all freed by reference counting, across several turns of the loop.

    The collector starts a young collection once allocations outnumber frees by the
    threshold, and what it walks then is every object made since the last one that
    is still alive. At a thousand nodes that is the state in flux: each node's
    pending timers, cancel scopes, events and requests, 100,000-190,000 objects and
    0.1-0.35 s of CPU in one turn (``docs/benchmarks.md``). A ``/metrics`` render
    makes a sample object per line, 40,000-60,000 allocations at a thousand nodes, so every scrape
    set off one or two of those walks, and they were most of the loop's long turns.
    The render's own objects need none of it: they are gone when the page is written.

    Collections resume when the last overlapping pause ends; a collector turned off
    before the first began stays off. Scrapers that keep renders overlapping without a
    gap would keep it off for good, and cyclic garbage with it: a pause that begins or
    ends once the first has lasted ``LONGEST_PAUSE`` turns the collector back on.
    """
    if _Pause.depth == 0:
        _Pause.resume = gc.isenabled()
        _Pause.since = clock()
        gc.disable()
    elif _Pause.resume and clock() - _Pause.since > LONGEST_PAUSE:
        gc.enable()
    _Pause.depth += 1
    try:
        yield
    finally:
        _Pause.depth -= 1
        overdue = clock() - _Pause.since > LONGEST_PAUSE
        if _Pause.resume and (_Pause.depth == 0 or overdue):
            gc.enable()
