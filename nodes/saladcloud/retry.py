"""When and how long to wait before repeating a SaladCloud request.

Only answers that may change on their own are retried: 429 (the key's budget
refills), 408 and 5xx (the server recovers), timeouts and connection errors (the
network recovers). A 400, 401, 403 or 404 repeats itself, so it is reported at once.

Backoff is exponential with *full jitter* (a uniform draw between zero and the
exponential ceiling), which spreads out nodes that failed together better than a
fixed ladder. A ``Retry-After`` header, when the server sends one, wins over the
computed delay (capped, so a wild value cannot park a node for hours).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    """Attempts in total, the first included."""
    base_delay: float = 0.5
    """Ceiling of the first backoff, in seconds; doubles with every retry."""
    max_delay: float = 30.0
    """Ceiling of any computed backoff."""
    max_retry_after: float = 300.0
    """Ceiling of a server-sent ``Retry-After``."""
    jitter: bool = True
    """Draw the delay uniformly below the ceiling (full jitter) instead of using it."""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    """Source of the jitter; seed it to replay a run."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays cannot be negative")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, retry - 1))
        return self.rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_retry_after, retry_after)
        return self.backoff(retry)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Anything unparsable counts as absent, so a garbled header falls back to backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and not math.isnan(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())
