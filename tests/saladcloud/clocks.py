"""Clocks for the limiter and the simulator, so budgets of minutes take milliseconds."""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel


class JumpClock:
    """Virtual time that jumps to the end of every sleep at once.

    Right for one sleeper at a time (a client's retries, one consumer of a budget);
    with several concurrent sleepers use ``ManualClock``.
    """

    def __init__(self) -> None:
        self._now = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._now += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


class ManualClock:
    """Virtual time that only moves when the test says so."""

    def __init__(self) -> None:
        self._now = 0.0
        self._sleepers: list[tuple[float, anyio.Event]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        entry = (self._now + seconds, anyio.Event())
        self._sleepers.append(entry)
        try:
            await entry[1].wait()
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Move time forward and let every task woken by it run until it blocks again."""
        self._now += seconds
        for entry in list(self._sleepers):
            if entry[0] <= self._now + 1e-9:
                self._sleepers.remove(entry)
                entry[1].set()
        await settle()


async def settle(rounds: int = 50) -> None:
    """Let ready tasks run to their next wait (no I/O involved, so a few loop turns do).

    ``anyio.wait_all_tasks_blocked`` does the same but polls every 0.1 s on asyncio,
    which makes a test with hundreds of steps slow.
    """
    for _ in range(rounds):
        await anyio.lowlevel.checkpoint()


class FastClock:
    """The wall clock sped up ``factor`` times: a minute passes in 60/factor seconds.

    Shared by a client's limiter and a simulator's rate window, it lets a test cross
    several rate-limit windows in a few real seconds.
    """

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.factor

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds / self.factor)
