"""Intervals shortened a little at random, so that a thousand nodes' timers stay apart.

Timers that a stalled event loop lets come due together fire in one turn; with fixed
intervals they would then stay in step for good, a thousand lists or renewals at once
(the loop probe of ``tests/benchmarks/fleet.py`` saw turns of 1,000-3,000 callbacks).
Shortening rather than stretching keeps every interval within what it promises.
"""

from __future__ import annotations

import random


def jittered(seconds: float, spread: float = 0.1) -> float:
    """``seconds`` less up to ``spread`` of itself, at random."""
    return seconds * random.uniform(1.0 - spread, 1.0)  # noqa: S311 - not for secrets
