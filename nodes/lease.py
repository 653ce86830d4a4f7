"""The node's Lease in ``kube-node-lease``: its heartbeat, and the record of who owns it.

**Heartbeat.** The node lifecycle controller only looks at whether ``renewTime`` moves;
if it stops for the grace period (40-50 s) the node goes Unknown, gets a NoExecute
taint, and five minutes later every pod on it is evicted. So renewals share nothing
with pod work: their own task, an unlimited client view without the ownership gate,
no waiting on SaladCloud, and retries that back off from 200 ms like the kubelet's.

**Ownership.** ``holderIdentity`` is ``<replica identity>/<run id>`` of the process
serving the node, and every write is a compare-and-swap: a PUT of the object as last
read or written (its ``resourceVersion`` rides along), or a create that fails if the
Lease exists. A write that finds the Lease changed by someone else reads it again: if
it still names us, nothing was lost (a label, say) and we write again; if it names
another holder, the node was taken over, and the keeper ends the node's ``Tenure``
and raises ``LeaseLost`` so that the node's whole scope is cancelled at once. A
keeper that cannot renew before its tenure runs out does the same: by then a standby
may be entitled to the node.

*Who* may take a Lease that names someone else is decided by the supervisor, which
sees the other replicas (``supervisor/takeover.py``); it hands the node its first
write as a ``Claim``. A keeper started without one (the node restarting in its slot,
or a node run on its own) only takes a Lease that is absent, released, or its own.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .jitter import jittered
from .kube import KubeClient, KubeConflict, KubeError, KubeNotFound
from .metrics import NodeMetrics
from .node_object import micro_timestamp
from .tenure import Tenure

log = logging.getLogger(__name__)

NAMESPACE = "kube-node-lease"
_FIRST_BACKOFF = 0.2
_MAX_BACKOFF = 7.0

JSON = dict[str, Any]


def lease_path(node: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{node}"


def holder_of(lease: JSON | None) -> str:
    """The Lease's ``holderIdentity``; empty when it is absent or released."""
    if lease is None:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def identity_of(holder: str) -> str:
    """The replica part of a holder, ``<identity>/<run id>``."""
    return holder.split("/", maxsplit=1)[0]


def _without_managed_fields(lease: JSON) -> JSON:
    """The Lease as the keeper holds it, and so as its renewals send it: without
    ``metadata.managedFields``, which the API server keeps as they were when an update
    leaves them out. They were half of every renewal's body, copied, serialized and
    parsed 100 times a second at 1,000 nodes, and half of the Lease each node held."""
    metadata = lease.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return lease


class LeaseLost(Exception):
    """The node's Lease is another's, or could not be kept: stop the node, do not
    restart it (the supervisor decides what happens to the node next)."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
        """``taken`` (another holder, a lost race) or ``deadline`` (not renewed in time):
        a bounded metric label."""


@dataclass(frozen=True)
class Claim:
    """A successful first write of a node's Lease by this process."""

    lease: JSON
    """The Lease as the server returned it."""
    sent: float
    """``time.monotonic()`` when the write was sent: ownership counts from there."""


def _new_lease(node: str, spec: JSON, owners: list[JSON], labels: Mapping[str, str]) -> JSON:
    metadata: JSON = {"name": node, "namespace": NAMESPACE}
    if labels:
        metadata["labels"] = dict(labels)
    if owners:
        metadata["ownerReferences"] = owners
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def _held_spec(previous: JSON | None, holder: str, duration_seconds: int) -> JSON:
    """The spec that says ``holder`` holds the Lease as of now."""
    now = micro_timestamp(datetime.now(UTC))
    spec = dict((previous or {}).get("spec") or {})
    if spec.get("holderIdentity") != holder:
        transitions = int(spec.get("leaseTransitions") or 0)
        spec["leaseTransitions"] = transitions + 1 if previous is not None else 0
        spec["acquireTime"] = now
    spec["holderIdentity"] = holder
    spec["leaseDurationSeconds"] = duration_seconds
    spec["renewTime"] = now
    return spec


async def claim(
    kube: KubeClient,
    node: str,
    holder: str,
    current: JSON | None,
    *,
    duration_seconds: int,
    request_timeout: float,
    owners: list[JSON] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Claim:
    """Take the node's Lease as it was just read (``current``; None: it does not exist).

    A compare-and-swap: raises ``KubeConflict`` if anyone wrote the Lease since it was
    read (or created it, when ``current`` is None). ``owners`` replaces the Lease's
    ownerReferences when given; ``labels`` are added (renewals copy the object, so they
    stay), which also labels a Lease written before the labels existed.
    """
    sent = time.monotonic()
    spec = _held_spec(current, holder, duration_seconds)
    if current is None:
        body = _new_lease(node, spec, owners or [], labels or {})
        written = await kube.post(
            f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases",
            body,
            request_timeout=request_timeout,
        )
    else:
        body = copy.deepcopy(current)
        body["spec"] = spec
        if owners is not None:
            body.setdefault("metadata", {})["ownerReferences"] = owners
        if labels:
            meta = body.setdefault("metadata", {})
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
        written = await kube.put(lease_path(node), body, request_timeout=request_timeout)
    return Claim(written, sent)


async def release(
    kube: KubeClient, node: str, holder: str, *, request_timeout: float = 5.0
) -> bool:
    """Give the node's Lease up if ``holder`` holds it, so that the next owner takes it
    at once (handoff, shutdown); True if it was released here. Call only once nothing
    more will be sent for the node: its incarnation has stopped."""
    try:
        current = await kube.get(lease_path(node), request_timeout=request_timeout)
    except KubeNotFound:
        return False
    if holder_of(current) != holder:
        return False
    body = copy.deepcopy(current)
    body["spec"]["holderIdentity"] = None
    try:
        # Compare-and-swap like every other write: a Lease taken meanwhile stays taken.
        await kube.put(lease_path(node), body, request_timeout=request_timeout)
    except (KubeConflict, KubeNotFound):
        return False
    return True


class LeaseKeeper:
    def __init__(
        self,
        kube: KubeClient,
        node_name: str,
        *,
        tenure: Tenure,
        node_uid: Callable[[], str],
        ensure_node: Callable[[], Awaitable[str]],
        identity: str,
        holder: str | None = None,
        claimed: Claim | None = None,
        duration_seconds: int = 40,
        renew_interval: float = 10.0,
        metrics: NodeMetrics | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._kube = kube.unlimited()
        self._labels = dict(labels or {})
        """Carried by the Lease (the chart's admission policy checks its
        node-restriction.kubernetes.io/salad-vk label)."""
        self._node = node_name
        self._tenure = tenure
        self._node_uid = node_uid
        self._ensure_node = ensure_node
        self._identity = identity
        # A node run on its own (tests) has a holder of its own; restarted, it takes
        # over from its earlier self at once, as the supervisor does for its restarts.
        self._own_holder = holder is None
        self.holder = holder or f"{identity}/{uuid.uuid4().hex[:8]}"
        self._claimed = claimed
        self._duration = duration_seconds
        self._interval = renew_interval
        self._metrics = metrics
        self._path = lease_path(node_name)
        self._lease: JSON | None = None
        self._lock = anyio.Lock()
        self._soon = anyio.Event()
        self.last_renewal: float | None = None
        """``time.monotonic()`` of the last successful write; /readyz reads it."""
        self._extra = {"node": node_name}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the Lease (the supervisor's claim, else a claim of its own), signal
        ``task_status``, then renew it until cancelled. Raises ``LeaseLost``."""
        if self._claimed is not None:
            self._took(self._claimed.lease, self._claimed.sent)
            self._claimed = None
        else:
            async with self._lock:
                await self._until_success(self._claim_own)
        task_status.started()
        while True:
            with anyio.move_on_after(jittered(self._interval, 0.08)):
                await self._soon.wait()
            self._soon = anyio.Event()
            await self.renew_now()

    async def release(self, request_timeout: float = 5.0) -> bool:
        """Give the Lease up (the node has stopped: handoff, shutdown), from the Lease as
        last written, without reading it first; True if released here."""
        async with self._lock:
            if self._lease is None or holder_of(self._lease) != self.holder:
                return False
            body = copy.deepcopy(self._lease)
            body["spec"]["holderIdentity"] = None
            try:
                await self._kube.put(self._path, body, request_timeout=request_timeout)
            except KubeConflict:
                # Written by someone else since (a label, say): the slow way.
                return await release(
                    self._kube, self._node, self.holder, request_timeout=request_timeout
                )
            except KubeNotFound:
                return False
            self._lease = None
            return True

    def renew_soon(self) -> None:
        """Renew without waiting for the interval: the replica's membership is back after
        a lapse, and only a renewal sent from now on proves the node ours again."""
        self._soon.set()

    async def renew_now(self) -> None:
        """Renew at once (the Node was just registered: its Lease should name it)."""
        async with self._lock:
            await self._until_success(self._renew)

    # --- writing ---------------------------------------------------------------------

    async def _until_success(self, attempt: Callable[[float], Awaitable[None]]) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            left = self._tenure.valid_until - time.monotonic()
            if self.last_renewal is not None and left <= 0:
                self._tenure.end("its Lease could not be renewed in time")
                raise LeaseLost(f"node {self._node}: Lease not renewed in time", kind="deadline")
            # A stalled connection must not hold a renewal past the tenure (nor past the
            # next renewal): the kubelet too gives each lease call the renew interval.
            timeout = max(0.5, min(self._interval, left)) if left > 0 else self._interval
            started = time.monotonic()
            try:
                await attempt(timeout)
            except LeaseLost:
                raise
            except Exception as error:  # the heartbeat never dies of what it did not foresee
                if self._metrics is not None:
                    self._metrics.lease_renewal_failures.labels(node=self._node).inc()
                if isinstance(error, KubeError):
                    log.warning("lease write failed: %s", error, extra=self._extra)
                else:
                    log.exception("lease write failed unexpectedly", extra=self._extra)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            if self._metrics is not None:
                self._metrics.lease_renewed(self._node, time.monotonic() - started)
            return

    def _took(self, lease: JSON, sent: float) -> None:
        self._lease = _without_managed_fields(lease)
        self._tenure.renewed(sent)
        self.last_renewal = time.monotonic()

    def _owners(self) -> list[JSON] | None:
        """The ownerReferences the Lease should have (deleting the Node deletes it), or
        None while the Node's UID is unknown."""
        uid = self._node_uid()
        if not uid:
            return None
        return [{"apiVersion": "v1", "kind": "Node", "name": self._node, "uid": uid}]

    def _mine(self, holder: str) -> bool:
        if not holder or holder == self.holder:
            return True
        return self._own_holder and identity_of(holder) == self._identity

    async def _claim_own(self, limit: float) -> None:
        try:
            current: JSON | None = await self._kube.get(self._path, request_timeout=limit)
        except KubeNotFound:
            current = None
            if self.last_renewal is not None:
                # It was ours and vanished: the Node was deleted and its Lease with it.
                # The Node comes back first, so that the new Lease can name it.
                await self._ensure_node()
        if not self._mine(holder_of(current)):
            holder = holder_of(current)
            self._tenure.end(f"its Lease is held by {holder}")
            raise LeaseLost(f"node {self._node}: Lease held by {holder}", kind="taken")
        taken = await claim(
            self._kube,
            self._node,
            self.holder,
            current,
            duration_seconds=self._duration,
            request_timeout=limit,
            owners=self._owners(),
            labels=self._labels,
        )
        self._took(taken.lease, taken.sent)

    async def _renew(self, limit: float) -> None:
        if self._lease is None:
            await self._claim_own(limit)
            return
        body = copy.deepcopy(self._lease)
        body["spec"] = {**(body.get("spec") or {}), "holderIdentity": self.holder}
        body["spec"]["renewTime"] = micro_timestamp(datetime.now(UTC))
        owners = self._owners()
        if owners is not None and body.get("metadata", {}).get("ownerReferences") != owners:
            body.setdefault("metadata", {})["ownerReferences"] = owners
        sent = time.monotonic()
        try:
            # PUT the cached object, no GET first: one write per renewal.
            written = await self._kube.put(self._path, body, request_timeout=limit)
        except KubeConflict:
            await self._reread(limit)
            raise
        except KubeNotFound:
            self._lease = None
            await self._claim_own(limit)
            return
        self._took(written, sent)

    async def _reread(self, limit: float) -> None:
        """After a conflict: keep going if the Lease still names us, else it is lost.
        (A PUT of a Lease deleted meanwhile also conflicts, on its UID: then the next
        attempt claims it afresh.)"""
        try:
            current = await self._kube.get(self._path, request_timeout=limit)
        except KubeNotFound:
            self._lease = None
            return
        holder = holder_of(current)
        if holder != self.holder:
            self._tenure.end(f"its Lease was taken by {holder or 'nobody (released)'}")
            raise LeaseLost(f"node {self._node}: Lease now held by {holder!r}", kind="taken")
        self._lease = _without_managed_fields(current)
