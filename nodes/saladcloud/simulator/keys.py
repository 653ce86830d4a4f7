"""API keys of the simulated account and their per-minute request budgets.

A declared key may use every declared project (like a user's key reaches every
organization the user belongs to). Its budget is a sliding window of *wall-clock*
time: at most ``rate_limit`` admitted requests in any ``window`` seconds. Refused
requests do not count against it, so a client that backs off recovers as soon as
the window slides.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .problems import ApiProblem


def fingerprint(key: str) -> str:
    """A name for a key that can be shown: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass
class KeyState:
    accepted: bool = True
    requests: int = 0
    """API requests that presented this key (admitted or not)."""
    rate_limited: int = 0
    """Of those, answered 429 (budget exhausted, storm or throttling fault)."""
    window: deque[float] = field(default_factory=deque, repr=False)


class Keys:
    def __init__(
        self,
        keys: Iterable[str],
        *,
        rate_limit: int,
        wall: Callable[[], float],
        window: float = 60.0,
    ) -> None:
        self._states = {key: KeyState() for key in keys}
        self.rate_limit = rate_limit
        self._wall = wall
        self._window = window

    def state(self, key: str) -> KeyState | None:
        return self._states.get(key)

    def items(self) -> list[tuple[str, KeyState]]:
        return list(self._states.items())

    def accept(self, key: str) -> None:
        self._states.setdefault(key, KeyState()).accepted = True

    def revoke(self, key: str) -> None:
        state = self._states.get(key)
        if state is not None:
            state.accepted = False

    def authenticate(self, key: str | None) -> KeyState:
        if not key:
            raise ApiProblem(401, "Unauthorized", "the Salad-Api-Key header is missing")
        state = self._states.get(key)
        if state is None or not state.accepted:
            raise ApiProblem(403, "Forbidden", "the API key is not valid")
        state.requests += 1
        return state

    def admit(self, state: KeyState) -> float | None:
        """None if the request fits the key's window, else seconds until it would."""
        now = self._wall()
        horizon = now - self._window
        window = state.window
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= self.rate_limit:
            return max(0.0, window[0] + self._window - now)
        window.append(now)
        return None


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
