"""Simulated SaladCloud time: the wall clock sped up by ``--time-scale``, plus jumps.

Group lifecycles run on this clock (a time scale of 60 turns a minute of deployment
into a second). Rate limiting does not: the real limit is per wall-clock minute, and
a client's limiter counts wall-clock time too. Nor do log entries: a container's
``time`` is its machine's clock and ``receive_time`` SaladCloud's, both wall clocks,
which a client asks about by its own clock ("the last 30 seconds"). So the clock also
maps a simulated instant to the wall instant at which simulated time passed it
(``wall_seconds_at``) and back (``sim_at``): it remembers every change of speed and
every jump as the start of a segment in which both advance in a fixed ratio.
"""

from __future__ import annotations

import bisect
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
        self._started_first = self._started
        self._offset = 0.0
        if epoch is None:
            # To the millisecond, as every time is rendered: what a client reads back
            # is then exactly the instant the simulator compares with.
            now = datetime.now(UTC)
            epoch = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._epoch = epoch
        self._last = 0.0
        # Segments of constant speed: where each starts, in simulated and in wall
        # seconds since the start, and its speed.
        self._sims = [0.0]
        self._walls = [0.0]
        self._scales = [time_scale]

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
        now = self.now()
        self._segment(now)
        return now

    def set_time_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        now = self.now()
        self._scale = time_scale
        self._started = self._monotonic()
        self._offset = now
        self._segment(now)

    def datetime_at(self, seconds: float) -> datetime:
        return self._epoch + timedelta(seconds=seconds)

    # --- wall time -------------------------------------------------------------------

    def _segment(self, now: float) -> None:
        self._sims.append(now)
        self._walls.append(self.elapsed())
        self._scales.append(self._scale)

    def elapsed(self) -> float:
        """Wall seconds since the simulator started."""
        return self._monotonic() - self._started_first

    def wall_seconds_at(self, sim: float) -> float:
        """Wall seconds since the start at which simulated time passed ``sim`` (an
        instant skipped by a jump maps to the moment of the jump)."""
        index = max(0, bisect.bisect_right(self._sims, sim) - 1)
        wall = self._walls[index] + (sim - self._sims[index]) / self._scales[index]
        if index + 1 < len(self._walls):
            wall = min(wall, self._walls[index + 1])
        return wall

    def sim_at(self, wall: float) -> float:
        """Simulated time at ``wall`` seconds since the start (after any jump then)."""
        index = max(0, bisect.bisect_right(self._walls, wall) - 1)
        return self._sims[index] + (wall - self._walls[index]) * self._scales[index]

    def wall_datetime(self, wall: float) -> datetime:
        """The wall-clock instant ``wall`` seconds after the start."""
        return self._epoch + timedelta(seconds=wall)


def rfc3339(moment: datetime) -> str:
    """``2026-04-03T12:34:56.789Z``: UTC with a zone, like the real API."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
