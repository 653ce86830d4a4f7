"""What to do next for one pod, decided without any I/O: an action value per pod.

The reconciler looks at every pod on each pass and asks :func:`decide`; the answer is
a value (create the group, confirm it, read its instances, write a status, delete the
group, remove the pod) or ``None``. Only the reconciler's executor acts on it, and it
is the one place where a mutation is sent. Kept pure, the rules read as a table and
are tested as one (``tests/nodes/test_pod_decisions.py``).

Rules that keep workloads safe:

* A group missing from a list is never taken for gone on the list's word: a list
  can be incomplete (100 items at most) or glitch. A direct GET must answer 404 first
  (:class:`Confirm`).
* A group is the pod's only if its owner marks carry the pod's UID. A group of the
  same name owned by another pod is never deleted nor adopted for this one.
* A pod the node refused waits, as the kubelet's pods do (``Pending``, the container
  waiting with the reason): a Failed pod would be replaced at once by its ReplicaSet
  and refused again, a storm of pods.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .ownership import owner_of
from .saladcloud.models import ContainerGroup, ContainerGroupInstance
from .status_patch import status_patch
from .translate import pending_status, pod_status

JSON = dict[str, Any]


@dataclass
class PodTrack:
    """What this run of the node knows about one pod beyond the pod object itself."""

    uid: str
    group: str
    """The name of the pod's container group (derived from namespace, name and UID)."""
    created_at: float | None = None
    """Monotonic time our create (or adoption) of the group completed."""
    delete_sent_at: float | None = None
    create_sent: bool = False
    """A create went out: even if its answer was lost, the group may exist."""
    next_attempt: float = 0.0
    attempts: int = 0
    waiting: tuple[str, str] | None = None
    """A waiting reason/message shown while the group cannot be created (yet)."""
    judged: str | None = None
    """Digest of the pod a lasting refusal was judged on. Such a pod is judged again at
    the end of a long backoff (what it reads, a Secret's value or its namespace's
    labels, may have changed), and at once when the pod itself changes."""
    instances: list[ContainerGroupInstance] = field(default_factory=list)
    instances_at: float = 0.0
    fetched: ContainerGroup | None = None
    """The group as a direct GET (or our create) last returned it."""
    fetched_at: float = 0.0
    deletion_seen: bool = False
    written: tuple[str, JSON] | None = None
    """(resourceVersion the pod had, status we wrote): until the watch brings the pod
    past that version, the same status is not written again."""


@dataclass(frozen=True)
class Listing:
    """The project's groups as the last complete list saw them."""

    groups: Mapping[str, ContainerGroup]
    sent_at: float
    """Monotonic time the list was *sent*: anything done before then is in it."""
    complete: bool
    """False when the list was full (100 items): a group missing from it may exist."""


@dataclass(frozen=True)
class Create:
    """Admit the pod, read what it references, translate it, create its group."""


@dataclass(frozen=True)
class Confirm:
    """The group we made is missing from a later list: ask for it by name."""


@dataclass(frozen=True)
class ReadInstances:
    """Read the group's instances: readiness the list cannot tell."""

    group: ContainerGroup


@dataclass(frozen=True)
class WriteStatus:
    status: JSON


@dataclass(frozen=True)
class DeleteGroup:
    why: str


@dataclass(frozen=True)
class Finish:
    """The group is gone: make the pod terminal, then remove it."""


Action = Create | Confirm | ReadInstances | WriteStatus | DeleteGroup | Finish


@dataclass(frozen=True)
class Circumstances:
    """What a decision needs besides the pod and its track: the clocks, the node."""

    now: float
    """Monotonic."""
    wall: datetime
    node_ip: str
    poll_interval: float
    delete_confirm_timeout: float


def phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def resource_version(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("resourceVersion"))


def pod_digest(pod: Mapping[str, Any]) -> str:
    """What a refusal depends on: the spec and the metadata a user can change."""
    meta = pod.get("metadata") or {}
    judged = {
        "spec": pod.get("spec"),
        "annotations": meta.get("annotations"),
        "labels": meta.get("labels"),
    }
    return hashlib.sha256(json.dumps(judged, sort_keys=True).encode()).hexdigest()


def _has_readiness_probe(pod: Mapping[str, Any]) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return bool(containers[0].get("readinessProbe"))


def has_run(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's status shows a container group instance (ours, earlier)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(str(s.get("containerID") or "").startswith("salad://") for s in statuses)


def _is_ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def is_ours(group: ContainerGroup, track: PodTrack) -> bool:
    """Whether ``group`` belongs to the tracked pod, by its owner marks."""
    owner = owner_of(group)
    return owner is not None and owner.uid == track.uid


def group_state(track: PodTrack, listing: Listing) -> ContainerGroup | None:
    """The pod's own group as last seen: in the list, or by a GET (or our create) newer
    than the list. A group of that name owned by someone else is not the pod's."""
    listed = listing.groups.get(track.group)
    if listed is not None:
        return listed if is_ours(listed, track) else None
    if track.fetched is not None and track.fetched_at >= listing.sent_at:
        return track.fetched
    return None


def name_taken(track: PodTrack, listing: Listing) -> bool:
    """Another pod's group has this pod's group name."""
    listed = listing.groups.get(track.group)
    return listed is not None and not is_ours(listed, track)


def status_action(
    pod: JSON, track: PodTrack, group: ContainerGroup | None, when: Circumstances
) -> WriteStatus | None:
    """The status the pod should show, if writing it would change anything."""
    if group is None and track.waiting is not None:
        reason, message = track.waiting
        status = pending_status(pod, reason, message, now=when.wall, node_ip=when.node_ip)
    else:
        status = pod_status(pod, group, track.instances, now=when.wall, node_ip=when.node_ip)
    if track.written == (resource_version(pod), status):
        return None  # written already; the watch has not brought it back yet
    if status_patch(pod.get("status") or {}, status) is None:
        return None
    return WriteStatus(status)


def _wants_instances(
    pod: JSON, track: PodTrack, group: ContainerGroup, when: Circumstances
) -> bool:
    """Instances cost a call per group, so they are read only where the list cannot
    tell: readiness of a running group whose pod has a readiness probe."""
    if group.current_state.status != "running" or not _has_readiness_probe(pod):
        return False
    age = when.now - track.instances_at
    return age >= (when.poll_interval if not _is_ready(pod) else 5 * when.poll_interval)


def _deletion(
    pod: JSON, track: PodTrack, group: ContainerGroup | None, listing: Listing, when: Circumstances
) -> Action | None:
    # Delete unless the group provably never existed: a 404 costs one call, a group
    # left running costs money and shows up as an orphan ten minutes later.
    may_exist = not name_taken(track, listing) and (
        group is not None
        or track.created_at is not None
        or track.create_sent
        or not listing.complete
        or has_run(pod)
    )
    if track.delete_sent_at is None:
        return DeleteGroup("pod deleted") if may_exist else Finish()
    listed_after = listing.sent_at > track.delete_sent_at
    gone = listing.groups.get(track.group) is None and listed_after and listing.complete
    overdue = when.now - track.delete_sent_at > when.delete_confirm_timeout
    return Finish() if gone or overdue else None


def decide(pod: JSON, track: PodTrack, listing: Listing, when: Circumstances) -> Action | None:
    """The one next thing to do for ``pod``, or None."""
    group = group_state(track, listing)
    if deleting(pod):
        return _deletion(pod, track, group, listing, when)
    if phase(pod) in ("Succeeded", "Failed"):
        if group is not None and track.delete_sent_at is None:
            return DeleteGroup("pod finished")
        return None
    if group is None:
        unlisted = track.created_at is not None and listing.sent_at > track.created_at
        if unlisted:
            return Confirm()
        if track.created_at is not None:
            return status_action(pod, track, None, when)
        return Create()
    # What the list tells is shown first (Running, say); readiness, which needs an
    # instance read at the key's lowest priority, follows.
    write = status_action(pod, track, group, when)
    if write is not None:
        return write
    if _wants_instances(pod, track, group, when):
        return ReadInstances(group)
    return None


def changed_since_refused(pod: Mapping[str, Any], track: PodTrack) -> bool:
    """Whether a refused pod was changed since (an annotation fixed in place, say): it is
    then judged again at once instead of at the end of its backoff."""
    return track.judged is not None and track.judged != pod_digest(pod)


def adopted_listed(track: PodTrack, listing: Listing, now: float) -> None:
    """A listed group that is ours counts as created (after a restart, say): a later
    list that misses it must be confirmed, not ignored."""
    if track.created_at is None and group_state(track, listing) is not None:
        track.created_at = now
