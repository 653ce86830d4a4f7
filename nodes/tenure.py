"""Whether this incarnation of a node may still act on it: the gate every mutation passes.

A node belongs to the replica that holds its Lease, and a replica only *knows* it holds
it as of its last successful compare-and-swap on that Lease. Another replica may take
the node over once the holder has looked dead for ``ownershipTimeout`` (see
``supervisor/takeover.py``); the holder must have stopped acting by then, on its own
clock, without being told. So every SaladCloud mutation and every Kubernetes write of
the node asks one ``Tenure`` just before it is sent, and the ``Tenure`` answers from
monotonic time alone:

* **The node's own Lease** must have been renewed within ``node_deadline`` of when the
  last successful renewal was *sent* (not answered: the server may have applied it any
  time after sending, and a standby measures from when it saw the change, which is
  later still). This bounds a replica that can reach the API server for its membership
  but not for one node's Lease.
* **The replica's membership** (``Standing``) must be valid now, *and unbroken since
  the node's Lease was last proven ours*. Membership is what standbys watch to decide
  that a replica is dead, so it is what must fence first: its deadline (two thirds of
  ``ownershipTimeout``) is shorter than the standbys' takeover threshold, exactly as
  client-go's ``renewDeadline`` is shorter than its ``leaseDuration``. If membership
  lapsed since, someone may have taken the node in the gap: the tenure refuses until a
  compare-and-swap on the node's Lease, *sent after membership came back*, succeeds
  again. That write proves nobody took the node meanwhile (a taker writes the Lease
  first, which would have made ours fail), and from then on a taker would have to see
  our membership silent, which it is not. So a lapse pauses the node; it does not have
  to restart.
* Nothing else has ended it: a lost race, another holder, a handoff, shutdown.

A refusal raises ``NotOwned`` (as a ``SaladError`` or ``KubeError`` so callers that
handle those handle it too) *before anything is sent*. A request already sent when the
tenure ends is not recalled: it finishes, and the reconciler bounds how long
(``mutation_grace``). Events are not gated: they change nothing anyone acts on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from .kube.client import resource_of
from .kube.errors import KubeError
from .saladcloud.errors import SaladError

log = logging.getLogger(__name__)


def renew_deadline(ownership_timeout: float) -> float:
    """How long a holder may go without a successful renewal before it stops acting:
    two thirds of the takeover threshold, as client-go's 10 s renewDeadline is of its
    15 s leaseDuration. The third left over is the margin for everything between the
    gate's check and the bytes on the wire (event-loop lag, a wait for a pooled
    connection), and for clock rates that differ between replicas."""
    return ownership_timeout * 2.0 / 3.0


class NotOwned(Exception):
    """Refused before sending: this incarnation of the node does not own it (any more)."""


class SaladNotOwned(NotOwned, SaladError):
    """A SaladCloud mutation refused by the ownership gate; never sent."""


class KubeNotOwned(NotOwned, KubeError):
    """A Kubernetes write refused by the ownership gate; never sent."""


class Standing(Protocol):
    """The replica's membership, as far as its own clock can tell."""

    @property
    def epoch(self) -> int:
        """Changes every time membership lapsed and came back."""
        ...

    @property
    def epoch_began(self) -> float:
        """When this epoch's first renewal was answered (monotonic)."""
        ...

    def valid(self, now: float) -> bool:
        """Whether the replica is a member in good standing at ``now`` (monotonic)."""
        ...


class Tenure:
    """One incarnation's hold on one node; lost for good once lost."""

    def __init__(
        self,
        node: str,
        *,
        node_deadline: float,
        standing: Standing | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self._deadline = node_deadline
        self._standing = standing
        self._clock = clock
        self._valid_until = -math.inf
        self._epoch: int | None = None
        self._ended: str | None = None
        self._on_end: list[Callable[[], None]] = []

    # --- what the lease keeper and the supervisor tell it --------------------------

    def renewed(self, sent: float) -> None:
        """A compare-and-swap on the node's Lease succeeded; it was sent at ``sent``."""
        if self._ended is not None:
            return
        standing = self._standing
        first = self._epoch is None
        # Only a write sent inside the current epoch proves the node ours in it, the
        # first write of an incarnation too: one sent during a lapse and answered
        # after membership came back may have lost to a standby's takeover meanwhile.
        if standing is not None and standing.epoch != self._epoch and sent >= standing.epoch_began:
            if not first:
                log.info("node %s owned again: Lease renewed since membership is back", self.node)
            self._epoch = standing.epoch
        self._valid_until = max(self._valid_until, sent + self._deadline)

    def end(self, reason: str) -> None:
        """Nothing more may be sent for this node by this incarnation, whatever follows."""
        if self._ended is None:
            self._ended = reason
            log.info("node %s no longer owned here: %s", self.node, reason)
            for callback in self._on_end:
                callback()

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the tenure ends: for what waits to send (requests
        queued for a rate-limit token) to stop waiting at once, not at the next check."""
        self._on_end.append(callback)

    @property
    def valid_until(self) -> float:
        """When the node's own Lease part runs out unless renewed (monotonic)."""
        return self._valid_until

    @property
    def membership_lapsed(self) -> bool:
        """The replica's membership lapsed since the node's Lease was last proven ours:
        refused until the Lease is written again."""
        return (
            self._standing is not None
            and self._epoch is not None
            and self._standing.epoch != self._epoch
        )

    @property
    def ended(self) -> str | None:
        """Why the tenure ended, if it did (a refusal may also come from time alone)."""
        return self._ended

    # --- the gate --------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why nothing may be sent now; None while the node is owned."""
        if self._ended is not None:
            return self._ended
        now = self._clock()
        if now >= self._valid_until:
            if self._valid_until == -math.inf:
                return "the node's Lease is not held yet"
            return "the node's Lease was not renewed in time"
        if self._standing is not None:
            if self._standing.epoch != self._epoch:
                return "this replica's membership lapsed since the node's Lease was last renewed"
            if not self._standing.valid(now):
                return "this replica's membership Lease was not renewed in time"
        return None

    @property
    def owned(self) -> bool:
        return self.refusal() is None

    def guard_salad(self, operation: str) -> None:
        """Raise ``SaladNotOwned`` unless a SaladCloud mutation may be sent now."""
        why = self.refusal()
        if why is not None:
            raise SaladNotOwned(operation, detail=f"not sent: node {self.node}: {why}")

    def guard_kube(self, method: str, path: str) -> None:
        """Raise ``KubeNotOwned`` unless this Kubernetes write may be sent now."""
        if method == "GET" or resource_of(path) == "events":
            return
        why = self.refusal()
        if why is not None:
            raise KubeNotOwned(0, "NotOwned", f"not sent: node {self.node}: {why}", method, path)
