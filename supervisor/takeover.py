"""May this replica take a node's Lease now? One pure decision, table-tested.

The supervisor asks it for every node the assignment gives this replica (and for a
node it just handed off, in case nobody takes it), each time it reads the node's
Lease. The answer is what to do, never the doing:

* ``Take``: write the Lease now (a compare-and-swap on what was just read, so a
  racing replica makes the write fail instead of both succeeding);
* ``Confirm``: the holder's membership Lease has stood still in this replica's view
  for ``ownership_timeout``; before believing the holder dead, read that Lease afresh
  (a watch can lag; a read cannot) and ask again;
* ``Wait``: read the Lease again after that many seconds;
* ``Stop``: nothing to do here any more (someone else holds a node we only watched).

Who holds a Lease, and how alive they are:

| holder | | |
|---|---|---|
| nobody (absent, or released) | preferred owner | take it at once: a handoff or a new node |
| | anyone else listing it | take it if it stays free for ``ownership_timeout`` |
| this process | | take it (ours already: a node restarting) |
| an earlier run of this identity | | take it (the pod restarted) |
| a live member, or one leaving | | wait: it hands the node over itself |
| a member silent for ``ownership_timeout`` | | confirm, then take: it has fenced itself by then |
| a run its identity's Lease no longer names | | take it: that process is gone |
| no member at all | | take it once the node's Lease stood still ``unknown_holder_timeout`` |

"Stood still" is always measured on this replica's monotonic clock, from when it first
saw the value, never by comparing a timestamp written by another machine with ours.
The last row covers a process that announces no membership (an older version during
an upgrade, or one whose membership Lease was deleted): such a holder's own fencing
is bounded by its node's Lease (``NodeSettings.node_deadline``), which stays below
``unknown_holder_timeout``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from nodes.lease import identity_of


class Liveness(enum.Enum):
    """What the membership view says about a Lease holder."""

    LIVE = "live"
    LEAVING = "leaving"
    SILENT = "silent"
    """Its membership Lease has not changed for ``ownership_timeout`` (in our view)."""
    REPLACED = "replaced"
    """Its identity's membership Lease names another run: this run is gone."""
    UNKNOWN = "unknown"
    """No membership Lease for its identity."""


@dataclass(frozen=True)
class LeaseState:
    holder: str
    """``holderIdentity``; empty when released."""
    version: str
    """``resourceVersion``: any write changes it."""


@dataclass(frozen=True)
class Sighting:
    """When this replica first saw the node's Lease as it is now."""

    version: str | None
    """None: the Lease did not exist."""
    since: float


@dataclass(frozen=True)
class Take:
    kind: str
    """A bounded metric label: ``new``, ``ours``, ``released``, ``unclaimed``,
    ``restarted``, ``silent``, ``replaced``, ``unknown_holder``."""
    reason: str


@dataclass(frozen=True)
class Confirm:
    identity: str


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Stop:
    reason: str


Action = Take | Confirm | Wait | Stop


@dataclass(frozen=True)
class Timing:
    ownership_timeout: float
    unknown_holder_timeout: float
    poll: float
    """How soon to look again at a Lease a live member holds (a handoff is under way)."""


def decide(
    *,
    me: str,
    lease: LeaseState | None,
    liveness: Liveness,
    sighting: Sighting,
    preferred: bool,
    confirmed: bool,
    now: float,
    timing: Timing,
) -> Action:
    """What to do about a node's Lease, just read as ``lease`` (None: absent).

    ``me`` is this process's holder string; ``liveness`` what the membership view says
    of the Lease's holder; ``sighting`` when this replica first saw the Lease as it is;
    ``preferred`` whether the assignment gives the node to this replica; ``confirmed``
    whether a fresh read just showed the holder's membership Lease unchanged since it
    was first seen ``ownership_timeout`` ago.
    """
    still = now - sighting.since
    unchanged = sighting.version == (lease.version if lease is not None else None)
    holder = lease.holder if lease is not None else ""
    if not holder:
        if preferred:
            if lease is None:
                return Take("new", "no Lease yet")
            return Take("released", "released by its last holder")
        if unchanged and still >= timing.ownership_timeout:
            return Take("unclaimed", "left unclaimed by its preferred owner")
        return Wait(max(0.0, timing.ownership_timeout - still) if unchanged else timing.poll)
    if holder == me:
        return Take("ours", "held by this process already")
    if not preferred:
        return Stop(f"held by {holder}")
    if identity_of(holder) == identity_of(me):
        return Take("restarted", "held by an earlier run of this replica")
    if liveness in (Liveness.LIVE, Liveness.LEAVING):
        return Wait(timing.poll)
    if liveness is Liveness.SILENT:
        if confirmed:
            return Take("silent", f"{identity_of(holder)} silent for {timing.ownership_timeout:g}s")
        return Confirm(identity_of(holder))
    if liveness is Liveness.REPLACED:
        return Take("replaced", f"{holder} was replaced by a later run")
    if unchanged and still >= timing.unknown_holder_timeout:
        return Take("unknown_holder", f"{holder} is no member and its Lease stood still")
    return Wait(timing.unknown_holder_timeout - still if unchanged else timing.poll)
