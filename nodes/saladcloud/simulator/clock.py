"""Simulated SaladCloud time: the wall clock sped up by ``--time-scale``, plus jumps.

Group lifecycles run on this clock (a time scale of 60 turns a minute of deployment
into a second). Rate limiting does not: the real limit is per wall-clock minute, and
a client's limiter counts wall-clock time too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class SimClock:
    """Seconds of simulated time since the simulator started."""

    def __init__(
        self,
        time_scale: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        epoch: datetime | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self._scale = time_scale
        self._monotonic = monotonic
        self._started = monotonic()
        self._offset = 0.0
        self._epoch = epoch if epoch is not None else datetime.now(UTC)
        self._last = 0.0

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        # Never run backwards, even if the scale changes mid-run.
        current = (self._monotonic() - self._started) * self._scale + self._offset
        self._last = max(self._last, current)
        return self._last

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward (tests, demos); returns the new time."""
        if seconds < 0:
            raise ValueError("simulated time cannot go backwards")
        self._offset += seconds
        return self.now()

    def set_time_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        now = self.now()
        self._scale = time_scale
        self._started = self._monotonic()
        self._offset = now

    def datetime_at(self, seconds: float) -> datetime:
        return self._epoch + timedelta(seconds=seconds)


def rfc3339(moment: datetime) -> str:
    """``2026-04-03T12:34:56.789Z``: UTC with a zone, like the real API."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
