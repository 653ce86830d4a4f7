"""Faults on demand: 5xx answers, 429 storms, latency, dropped connections.

Decisions come from one random stream seeded by ``--seed``, and every request draws
the same number of values from it whatever the settings, so a run with the same seed
and the same request sequence meets the same faults, even when the fault rates are
changed mid-run through the control API.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .options import SimulatorOptions, Storm


@dataclass
class FaultSettings:
    error_rate: float = 0.0
    """Fraction of API requests answered 500/502/503 without being applied."""
    throttle_rate: float = 0.0
    """Fraction of API requests answered 429 whatever the key's budget."""
    drop_rate: float = 0.0
    """Fraction of API requests whose connection is closed after they were applied."""
    latency: float = 0.0
    """Wall seconds added before every API answer."""
    interrupt_rate: float = 0.0
    """Interruptions per running instance per simulated hour (for instances started after)."""
    storms: list[Storm] = field(default_factory=list)
    """Windows, in wall seconds after start, in which every request is answered 429."""
    storm_until: float | None = None
    """Wall time (monotonic) until which a storm started at run time lasts."""
    drop_next: int = 0
    """The next this many API answers are lost as with ``drop_rate`` (set at run time)."""

    @classmethod
    def from_options(cls, options: SimulatorOptions) -> FaultSettings:
        return cls(
            error_rate=options.error_rate,
            throttle_rate=options.throttle_rate,
            drop_rate=options.drop_rate,
            latency=options.latency,
            interrupt_rate=options.interrupt_rate,
            storms=options.storm_windows,
        )


@dataclass(frozen=True)
class FaultDecision:
    throttle: bool
    error_status: int | None
    html_error: bool
    drop: bool
    latency: float


class Faults:
    def __init__(
        self, settings: FaultSettings, *, seed: int, wall: Callable[[], float], started: float
    ) -> None:
        self.settings = settings
        self._rng = random.Random(f"{seed}:faults")  # noqa: S311 - replayable, not secret
        self._wall = wall
        self._started = started

    def storming(self) -> bool:
        now = self._wall()
        if self.settings.storm_until is not None and now < self.settings.storm_until:
            return True
        elapsed = now - self._started
        return any(s.start <= elapsed < s.start + s.length for s in self.settings.storms)

    def storm(self, seconds: float) -> None:
        self.settings.storm_until = self._wall() + seconds

    def decide(self) -> FaultDecision:
        throttle_draw, error_draw, kind_draw, drop_draw = (self._rng.random() for _ in range(4))
        settings = self.settings
        error_status: int | None = None
        html_error = False
        if error_draw < settings.error_rate:
            if kind_draw < 0.6:
                error_status = 503
            elif kind_draw < 0.85:
                error_status, html_error = 502, True
            else:
                error_status = 500
        drop = drop_draw < settings.drop_rate
        if settings.drop_next > 0:
            settings.drop_next -= 1
            drop = True
        return FaultDecision(
            throttle=self.storming() or throttle_draw < settings.throttle_rate,
            error_status=error_status,
            html_error=html_error,
            drop=drop,
            latency=settings.latency,
        )
