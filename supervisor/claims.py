"""Claiming one node's Lease: read, decide (``takeover.decide``), confirm, write.

One of these runs for each node this replica should serve but does not hold yet, and
for a node it has just handed off (in case its new owner never takes it). It reads
only that node's Lease, and only while it waits: quickly at first (a handoff takes a
fraction of a second), then less and less often while a live replica keeps the node.

Order matters for a takeover from a silent replica: the node's Lease is read first,
then the holder's membership Lease is read afresh to confirm it is still unchanged,
then the node's Lease is written by compare-and-swap on the version read *before* the
confirmation. If the holder renewed anything in between, either the confirmation or
the write fails; a holder that renewed nothing has been refusing to act since two
thirds of the timeout (``nodes/tenure.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from nodes.kube import KubeClient, KubeConflict, KubeError, KubeNotFound
from nodes.lease import Claim, claim, holder_of, lease_path
from nodes.tenure import Standing

from .membership import MemberView, member_lease_name, parse_member
from .takeover import Confirm, LeaseState, Liveness, Sighting, Stop, Take, Timing, Wait, decide

log = logging.getLogger(__name__)

_MAX_POLL = 5.0


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    take: Take


@dataclass
class Claimer:
    """Everything one claim needs, passed in (the supervisor builds one per process)."""

    kube: KubeClient
    holder: str
    view: MemberView
    standing: Standing
    members_namespace: str
    timing: Timing
    lease_duration_seconds: int
    request_timeout: float
    labels: Mapping[str, str] = field(default_factory=dict)
    """On every node Lease claimed (the chart's admission policy checks them)."""
    _nudged: anyio.Event = field(default_factory=anyio.Event, repr=False)
    _confirmed: dict[str, tuple[float, bool]] = field(default_factory=dict, repr=False)
    """identity -> (when a fresh read of its membership Lease was sent, whether it
    showed the replica silent). Valid for node Leases read before that moment only."""

    def nudge(self) -> None:
        """Something changed (a replica left, the assignment moved): every waiting claim
        looks at its Lease again now instead of at its next poll."""
        nudged, self._nudged = self._nudged, anyio.Event()
        nudged.set()

    async def claim(
        self,
        node: str,
        *,
        preferred: Callable[[], bool],
        looked: Callable[[], None] = lambda: None,
    ) -> Claimed | None:
        """Wait until ``node``'s Lease may be taken and take it; None when there is
        nothing to take (someone else holds a node we were only watching over).
        ``looked`` is called once the first decision is made (to take or to wait)."""
        try:
            return await self._claim(node, preferred, looked)
        finally:
            looked()

    async def _claim(
        self, node: str, preferred: Callable[[], bool], looked: Callable[[], None]
    ) -> Claimed | None:
        sighting: Sighting | None = None
        waiting_on: tuple[str, float] | None = None
        """The holder we wait for to hand the node over, and since when."""
        failures = 0
        while True:
            now = time.monotonic()
            if not self.standing.valid(now) or not self.view.synced:
                await anyio.sleep(self.timing.poll)
                continue
            try:
                current = await self._read(lease_path(node))
            except KubeError as error:
                log.warning("reading the node's Lease failed: %s", error)
                failures += 1
                await anyio.sleep(min(self.timing.poll * 2**failures, _MAX_POLL))
                continue
            failures = 0
            read_at = time.monotonic()
            state = _state(current)
            version = state.version if state is not None else None
            if sighting is None or sighting.version != version:
                sighting = Sighting(version, read_at)
            action = self._decide(state, sighting, preferred(), False, read_at)
            if isinstance(action, Confirm):
                action = await self._confirm(action, state, sighting, preferred(), read_at)
            if isinstance(action, Stop):
                log.info("not claiming: %s", action.reason)
                return None
            if isinstance(action, Wait):
                looked()
                holder = state.holder if state is not None else ""
                if waiting_on is None or waiting_on[0] != holder:
                    waiting_on = (holder, read_at)
                delay = max(0.05, min(action.seconds, self._poll(holder, waiting_on)))
                with anyio.move_on_after(delay):
                    await self._nudged.wait()
                await anyio.sleep(max(0.0, read_at + 0.1 - time.monotonic()))  # 10 reads/s at most
                continue
            if isinstance(action, Confirm) or not self.standing.valid(time.monotonic()):
                continue
            try:
                taken = await claim(
                    self.kube,
                    node,
                    self.holder,
                    current,
                    duration_seconds=self.lease_duration_seconds,
                    request_timeout=self.request_timeout,
                    labels=self.labels,
                )
            except KubeConflict:
                continue  # someone wrote it since it was read: look again
            except KubeError as error:
                log.warning("claiming the node's Lease failed: %s", error)
                await anyio.sleep(self.timing.poll)
                continue
            if action.kind not in ("new", "ours"):
                log.info("took the node over: %s", action.reason)
            return Claimed(taken, action)

    def _decide(
        self,
        state: LeaseState | None,
        sighting: Sighting,
        preferred: bool,
        confirmed: bool,
        now: float,
    ) -> Take | Confirm | Wait | Stop:
        holder = state.holder if state is not None else ""
        liveness = self.view.liveness(holder, now) if holder else Liveness.UNKNOWN
        return decide(
            me=self.holder,
            lease=state,
            liveness=liveness,
            sighting=sighting,
            preferred=preferred,
            confirmed=confirmed,
            now=now,
            timing=self.timing,
        )

    def _poll(self, holder: str, waiting_on: tuple[str, float]) -> float:
        """How soon to look again at a Lease someone else holds: every half second while
        a handoff is likely under way (the holder is leaving, or we started waiting a
        moment ago), then less and less often (a holder that keeps a node assigned here
        has a different view, or files, for now)."""
        if not holder:
            return self.timing.poll
        waited = time.monotonic() - waiting_on[1]
        if self.view.liveness(holder, time.monotonic()) is Liveness.LEAVING or waited < 5.0:
            return self.timing.poll
        # The exponent is capped: after a quarter of an hour of waiting, 1.5 ** it would
        # overflow a float (and the claim would die of it).
        steps = min(64.0, (waited - 5.0) / self.timing.poll)
        backoff: float = self.timing.poll * 1.5**steps
        return min(_MAX_POLL, backoff)

    async def _confirm(
        self,
        action: Confirm,
        state: LeaseState | None,
        sighting: Sighting,
        preferred: bool,
        read_at: float,
    ) -> Take | Confirm | Wait | Stop:
        """Read the silent holder's membership Lease afresh (or use a read of it sent
        after this node's Lease was read: one read confirms a silent replica for all its
        nodes); decide again with it."""
        cached = self._confirmed.get(action.identity)
        if cached is not None and cached[0] > read_at:
            confirmed = cached[1]
        else:
            path = (
                f"/apis/coordination.k8s.io/v1/namespaces/{self.members_namespace}/leases/"
                f"{member_lease_name(action.identity)}"
            )
            sent = time.monotonic()
            try:
                fresh = await self._read(path)
            except KubeError:
                return Wait(self.timing.poll)
            confirmed = self.view.confirms_silence(
                action.identity, parse_member(fresh) if fresh is not None else None, sent
            )
            self._confirmed[action.identity] = (sent, confirmed)
        again = self._decide(state, sighting, preferred, confirmed, time.monotonic())
        return Wait(self.timing.poll) if isinstance(again, Confirm) else again

    async def _read(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.kube.get(path, request_timeout=self.request_timeout)
        except KubeNotFound:
            return None


def _state(lease: dict[str, Any] | None) -> LeaseState | None:
    if lease is None:
        return None
    meta = lease.get("metadata")
    version = str(meta.get("resourceVersion") or "") if isinstance(meta, dict) else ""
    return LeaseState(holder=holder_of(lease), version=version)
