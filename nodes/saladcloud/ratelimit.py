"""One request budget per SaladCloud API key, shared fairly by the nodes that use it.

SaladCloud allows 240 requests per minute *per API key* (NOTES.md section 8), and
every node whose project uses that key draws from the same allowance. A
``KeyBudget`` is a token bucket sized so that no 60-second window can ever see more
than ``(1 - headroom) * requests_per_minute`` grants: a bucket of rate ``r`` and
burst ``b`` can grant ``b + 60 r`` requests in a window (full bucket at its start,
refill during it), so ``b + 60 r`` is set to that target. The headroom (5 %) absorbs
the difference between when we grant and when the server counts. It is no larger
because a burst runs at exactly the target: at 10 % headroom, 200 creates on one key
could not take less than 55.4 s even with nothing else sent, and with the second or
two pods take to reach their nodes they took 61 s (``tests/benchmarks/fleet.py``,
20 nodes on one key); at 5 % they fit in ~52 s, still never above 228 a minute.

Grants go to the most urgent waiter first: every mutation (create, delete, start,
stop, patch), and every read a mutation waits for (a node's first list, the GPU
classes a create needs, the look before a delete), before any poll, polls before
detail reads, and all of them before any log read (``kubectl logs``), whichever node
asked. A read ranked with the mutations matters when the key is busy: at poll rank, a
node's first list waited out a 200-create burst of the other nodes on its key, and
the node created nothing until then (``tests/benchmarks/fleet.py``, 20 nodes on one
key). A log read also leaves part of the burst in the bucket (``_LOG_RESERVE``), so
that however many log streams follow a key, a burst of creates that arrives finds
tokens waiting instead of an empty bucket. Among waiters of one priority, nodes get
turns in proportion to their weights, by self-clocked fair queueing (each request
gets a virtual finish tag ``max(now_v, node's last tag) + 1/weight``; the smallest tag
goes next), so a node that polls in a tight loop cannot starve a quiet one.

Waiting is an ordinary ``await``: cancelling it (an anyio cancel scope) removes the
waiter and hands the turn on. A token is taken only in the same synchronous step
that returns from ``acquire``, so cancellation can never lose one.

Several replicas of the process share the nodes of one key (``supervisor/``), and each
keeps its own bucket; SaladCloud counts them together. So a replica's bucket is sized
for its part of the key only: the limit times the weight of the key's nodes *it*
serves, over the weight of all the key's nodes in the projects file
(``set_total_weight``), recomputed whenever one of its nodes starts or stops. Every
replica reads the same file, so the parts add up to at most the whole. A node moves
by stopping first (its share leaves one bucket) and starting elsewhere after (it joins
another), so the sum never overshoots during a handoff either.

Time comes from an injected ``Clock`` so tests can run minutes of budget in seconds.
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from pydantic import SecretStr

_EPSILON = 1e-9
DEFAULT_HEADROOM = 0.05
"""Share of the per-key limit left unused (see the module docstring)."""
_POLL_SHARE = 0.75
"""Fraction of a node's share its polls may use; the rest is kept for mutations."""
_LOG_RESERVE = 0.5
"""Fraction of the burst (beyond the token it takes) a log read must leave in the bucket."""


class Priority(enum.IntEnum):
    """Lower values are granted first."""

    MUTATION = 0
    """Changes to the project, and the reads they wait for."""
    POLL = 1
    DETAIL = 2
    """Reads the list cannot replace (instances, for readiness): they get what the
    lists and mutations of every node on the key leave, so a node with a hundred
    unready pods cannot hold up another node's list or creates."""
    LOG = 3
    """Reading log entries for the kubelet API: only what the others leave over."""

    @property
    def label(self) -> str:
        """The metric label of this priority."""
        return self.name.lower()


class Clock(Protocol):
    """Where the limiter reads the time and how it waits."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``anyio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


@dataclass(eq=False)
class _Waiter:
    priority: Priority
    finish: float
    start: float
    seq: int
    limiter: NodeLimiter
    queued: bool = True

    def key(self) -> tuple[int, float, int]:
        return (int(self.priority), self.finish, self.seq)

    def __lt__(self, other: _Waiter) -> bool:
        return self.key() < other.key()


@dataclass(eq=False)
class _Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float
    """Tokens accrue only after this instant; a penalty moves it into the future."""

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def seconds_to_token(self, now: float, need: float = 1.0) -> float:
        self.refill(now)
        missing = max(0.0, need - self.tokens)
        return max(0.0, self.updated - now) + missing / self.rate


def _size(requests_per_minute: int, headroom: float, part: float = 1.0) -> tuple[float, float]:
    """(rate per second, burst) with burst + 60 * rate equal to ``part`` of the target
    per window (``part`` of the key this process serves)."""
    if requests_per_minute < 2:
        raise ValueError(f"requests_per_minute must be at least 2, got {requests_per_minute}")
    if not 0.0 <= headroom < 1.0:
        raise ValueError(f"headroom must be in [0, 1), got {headroom}")
    target = max(2.0, math.floor(requests_per_minute * (1.0 - headroom))) * part
    # A burst of a twentieth of the window (at most 10) lets a node create or delete a
    # few groups at once without waiting, while nearly all of the budget stays a
    # steady rate, so polls are spread out instead of bunching after a quiet spell.
    burst = max(1.0, min(10.0, math.floor(target / 20)))
    if target < 2.0:
        # A part this small cannot keep a whole token and a refill both: keep the one
        # token and the refill, at most one request a minute over the part (the
        # headroom takes it).
        return target / 60.0, 1.0
    return (target - burst) / 60.0, burst


class KeyBudget:
    """The request budget of one API key on one base URL."""

    def __init__(
        self,
        requests_per_minute: int = 240,
        *,
        headroom: float = DEFAULT_HEADROOM,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._headroom = headroom
        self._requests_per_minute = requests_per_minute
        self._total_weight: float | None = None
        rate, burst = _size(requests_per_minute, headroom)
        self._bucket = _Bucket(rate=rate, burst=burst, tokens=burst, updated=self._clock.now())
        self._holders: dict[str, NodeLimiter] = {}
        self._queue: list[_Waiter] = []
        self._seq = itertools.count()
        self._virtual = {priority: 0.0 for priority in Priority}
        self._changed: anyio.Event | None = None

    # --- what nodes read to pace themselves ------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def requests_per_minute(self) -> int:
        """The limit the server enforces, as configured."""
        return self._requests_per_minute

    @property
    def requests_per_second(self) -> float:
        """Sustained grant rate of this process's part of the key (its nodes together)."""
        return self._bucket.rate

    @property
    def part(self) -> float:
        """The part of the key's limit this process may use: the weight of the nodes it
        serves over the weight of all the key's nodes (1 when no total is set)."""
        if not self._total_weight:
            return 1.0
        served = sum(h.weight for h in self._holders.values())
        return min(1.0, served / self._total_weight)

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(sorted(self._holders))

    @property
    def waiting(self) -> int:
        """Requests queued for a token right now."""
        return len(self._queue)

    def fraction(self, node: str) -> float:
        """The node's share of the key: its weight over the sum of registered weights."""
        holder = self._holders.get(node)
        if holder is None:
            return 0.0
        return holder.weight / sum(h.weight for h in self._holders.values())

    def poll_interval(self, node: str, *, requests_per_poll: float = 1.0) -> float:
        """Seconds between a node's polls so that polls use ``_POLL_SHARE`` of its share.

        The rest of the share stays free for mutations, which jump the queue anyway.
        """
        fraction = self.fraction(node)
        if fraction <= 0.0:
            raise KeyError(f"node {node!r} has no share of this budget")
        return requests_per_poll / (self.requests_per_second * fraction * _POLL_SHARE)

    # --- configuration ---------------------------------------------------------------

    def share(self, node: str, weight: float = 1.0) -> NodeLimiter:
        """Register a node; a second share of the same node replaces the first."""
        if not weight > 0.0:
            raise ValueError(f"weight must be positive, got {weight}")
        limiter = NodeLimiter(self, node, weight)
        self._holders[node] = limiter
        self._resize()
        return limiter

    def reconfigure(self, requests_per_minute: int) -> None:
        """Apply a new per-key limit (after a config reload) without losing the queue."""
        _size(requests_per_minute, self._headroom)  # refuse a bad limit before changing
        self._requests_per_minute = requests_per_minute
        self._resize()

    def set_total_weight(self, total: float | None) -> None:
        """The weight of all the key's nodes, served here or by other replicas; None
        when this process serves the whole key whatever it runs."""
        if total is not None and not total > 0.0:
            raise ValueError(f"total weight must be positive, got {total}")
        self._total_weight = total
        self._resize()

    def _resize(self) -> None:
        """Size the bucket for the current limit and part, keeping its queue; tokens are
        never added, so a part that grows only refills faster from here on."""
        part = self.part
        rate, burst = _size(self._requests_per_minute, self._headroom, part if part else 1.0)
        self._bucket.refill(self._clock.now())
        self._bucket.rate = rate
        self._bucket.burst = burst
        self._bucket.tokens = min(self._bucket.tokens, burst)
        self._notify()

    def penalize(self, seconds: float) -> None:
        """Stop granting for ``seconds`` and start again from an empty bucket.

        Called when the server answered 429: it is counting more than we think, so
        every node of the key pauses, not just the one that was refused.
        """
        now = self._clock.now()
        self._bucket.refill(now)
        self._bucket.tokens = 0.0
        self._bucket.updated = max(self._bucket.updated, now + max(0.0, seconds))
        self._notify()

    # --- granting ----------------------------------------------------------------------

    def _unregister(self, limiter: NodeLimiter) -> None:
        if self._holders.get(limiter.node) is limiter:
            del self._holders[limiter.node]
            self._resize()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _changed_event(self) -> anyio.Event:
        if self._changed is None:
            self._changed = anyio.Event()
        return self._changed

    def _need(self, priority: Priority) -> float:
        """Tokens the bucket must hold to grant ``priority`` one."""
        if priority is Priority.LOG:
            return 1.0 + _LOG_RESERVE * max(0.0, self._bucket.burst - 1.0)
        return 1.0

    def _take(self, now: float, need: float = 1.0) -> bool:
        self._bucket.refill(now)
        if now + _EPSILON >= self._bucket.updated and self._bucket.tokens >= need - _EPSILON:
            self._bucket.tokens = max(0.0, self._bucket.tokens - 1.0)
            return True
        return False

    def _enqueue(self, limiter: NodeLimiter, priority: Priority) -> _Waiter:
        start = max(self._virtual[priority], limiter.last_finish.get(priority, 0.0))
        finish = start + 1.0 / limiter.weight
        limiter.last_finish[priority] = finish
        waiter = _Waiter(priority, finish, start, next(self._seq), limiter)
        heapq.heappush(self._queue, waiter)
        return waiter

    def _dequeue(self, waiter: _Waiter) -> None:
        if not waiter.queued:
            return
        waiter.queued = False
        self._queue.remove(waiter)
        heapq.heapify(self._queue)
        # A cancelled request should not count against its node's fair share.
        if waiter.limiter.last_finish.get(waiter.priority) == waiter.finish:
            waiter.limiter.last_finish[waiter.priority] = waiter.start

    async def _acquire(self, limiter: NodeLimiter, priority: Priority) -> float:
        began = self._clock.now()
        waiter = self._enqueue(limiter, priority)
        try:
            while True:
                if limiter.closed:
                    raise LimiterClosed(f"the rate limiter share of node {limiter.node!r} closed")
                if self._queue[0] is waiter:
                    now = self._clock.now()
                    need = self._need(priority)
                    if self._take(now, need):
                        heapq.heappop(self._queue)
                        waiter.queued = False
                        self._virtual[priority] = waiter.finish
                        self._notify()
                        return now - began
                    wait = self._bucket.seconds_to_token(now, need)
                    await self._clock.sleep(max(wait, _EPSILON))
                else:
                    await self._changed_event().wait()
        finally:
            if waiter.queued:
                self._dequeue(waiter)
                self._notify()


class LimiterClosed(RuntimeError):
    """The node's share of the budget was closed: no grant will come."""


class NodeLimiter:
    """One node's handle on its key's budget."""

    def __init__(self, budget: KeyBudget, node: str, weight: float) -> None:
        self._budget = budget
        self._node = node
        self._weight = weight
        self._closed = False
        self.last_finish: dict[Priority, float] = {}

    def __repr__(self) -> str:
        return f"NodeLimiter(node={self._node!r}, weight={self._weight})"

    @property
    def budget(self) -> KeyBudget:
        return self._budget

    @property
    def node(self) -> str:
        return self._node

    @property
    def weight(self) -> float:
        return self._weight

    @property
    def closed(self) -> bool:
        return self._closed

    async def acquire(self, priority: Priority) -> float:
        """Wait for a grant; returns the seconds waited. Raises ``LimiterClosed`` if
        the share is (or gets, while waiting) closed."""
        if self._closed:
            raise LimiterClosed(f"the rate limiter share of node {self._node!r} is closed")
        return await self._budget._acquire(self, priority)

    def close(self) -> None:
        """Give the node's share back to the other nodes of the key; its waiters stop
        waiting (a node that lost its Lease must not keep requests queued)."""
        self._closed = True
        self._budget._unregister(self)
        self._budget._notify()


@dataclass
class KeyBudgets:
    """Every ``KeyBudget`` of the process, found by API key and base URL.

    Keys are stored only as a salted digest, so nothing here can print one.
    """

    _budgets: dict[str, KeyBudget] = field(default_factory=dict, repr=False)
    _totals: dict[str, float] | None = field(default=None, repr=False)

    @staticmethod
    def _digest(api_key: SecretStr | str, base_url: str) -> str:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        material = b"salad-vk key budget\0" + key.encode() + b"\0" + base_url.rstrip("/").encode()
        return hashlib.sha256(material).hexdigest()

    def budget_for(
        self, api_key: SecretStr | str, base_url: str, requests_per_minute: int
    ) -> KeyBudget:
        """The budget of this key; the last configured ``requests_per_minute`` wins."""
        digest = self._digest(api_key, base_url)
        budget = self._budgets.get(digest)
        if budget is None:
            budget = KeyBudget(requests_per_minute)
            self._budgets[digest] = budget
            if self._totals is not None:
                budget.set_total_weight(self._totals.get(digest))
        elif budget.requests_per_minute != requests_per_minute:
            budget.reconfigure(requests_per_minute)
        return budget

    def set_total_weights(self, nodes: Iterable[tuple[SecretStr | str, str, float]]) -> None:
        """Every node of the projects file as ``(api key, base URL, rate-limit share)``,
        wherever it runs: each key's budget is then sized for the part of the key the
        nodes *this* process serves make up (``KeyBudget.set_total_weight``)."""
        totals: dict[str, float] = {}
        for api_key, base_url, weight in nodes:
            digest = self._digest(api_key, base_url)
            totals[digest] = totals.get(digest, 0.0) + weight
        self._totals = totals
        for digest, budget in self._budgets.items():
            budget.set_total_weight(totals.get(digest))

    def discard_unused(self) -> int:
        """Forget budgets no node holds a share of (after nodes were removed)."""
        unused = [d for d, b in self._budgets.items() if not b.nodes and not b.waiting]
        for digest in unused:
            del self._budgets[digest]
        return len(unused)

    def __len__(self) -> int:
        return len(self._budgets)
