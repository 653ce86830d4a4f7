"""The node's heartbeat: a Lease in ``kube-node-lease`` renewed every 10 s.

The node lifecycle controller only looks at whether ``renewTime`` moves; if it
stops for the grace period (50 s by default) the node goes Unknown, gets a
NoExecute taint, and five minutes later every pod on it is evicted. So this loop
shares nothing with pod work: its own task, an unlimited client view, no waiting on
SaladCloud, and retries that back off from 200 ms to 7 s like the kubelet's.

``holderIdentity`` is ``<process identity>/<run id>``. A lease held by another
process identity and not yet expired means another supervisor is serving this
node (e.g. an overlapping rollout): we wait for it to expire instead of fighting
over the node. Our own identity (the same pod restarted) takes over at once.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .kube import KubeClient, KubeConflict, KubeError, KubeNotFound
from .metrics import NodeMetrics
from .node_object import micro_timestamp

log = logging.getLogger(__name__)

NAMESPACE = "kube-node-lease"
_FIRST_BACKOFF = 0.2
_MAX_BACKOFF = 7.0


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class LeaseKeeper:
    def __init__(
        self,
        kube: KubeClient,
        node_name: str,
        *,
        ensure_node: Callable[[], Awaitable[str]],
        identity: str,
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
        self._ensure_node = ensure_node
        self._identity = identity
        self.holder = f"{identity}/{uuid.uuid4().hex[:8]}"
        self._duration = duration_seconds
        self._interval = renew_interval
        self._metrics = metrics
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{node_name}"
        self._lease: dict[str, Any] | None = None
        # A stalled connection must not hold a renewal past the next one: the kubelet
        # gives each lease call the renew interval, not the client's 30 s default.
        self._timeout = renew_interval
        self.last_renewal: float | None = None
        """``time.monotonic()`` of the last successful write; /readyz reads it."""
        self._extra = {"node": node_name}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Acquire the lease, signal ``task_status``, then renew it until cancelled."""
        await self._until_success(self._acquire)
        task_status.started()
        while True:
            # A little jitter keeps 50 nodes started together from renewing in lockstep.
            await anyio.sleep(self._interval * random.uniform(0.92, 1.0))  # noqa: S311
            await self._until_success(self._renew)

    async def _until_success(self, attempt: Callable[[], Any]) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            started = time.monotonic()
            try:
                await attempt()
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
            self.last_renewal = time.monotonic()
            if self._metrics is not None:
                self._metrics.lease_renewed(self._node, self.last_renewal - started)
            return

    def _spec(self, transitions: int) -> dict[str, Any]:
        now = micro_timestamp(datetime.now(UTC))
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self._duration,
            "renewTime": now,
            "acquireTime": now,
            "leaseTransitions": transitions,
        }

    def _owner(self, node_uid: str) -> dict[str, str]:
        """Deleting the Node deletes its Lease with it."""
        return {"apiVersion": "v1", "kind": "Node", "name": self._node, "uid": node_uid}

    async def _acquire(self) -> None:
        # The lease's owner must be the Node as it is now: if someone deleted it, the
        # lease would be garbage-collected again (and the node never re-registered).
        node_uid = await self._ensure_node()
        try:
            current = await self._kube.get(self._path, request_timeout=self._timeout)
        except KubeNotFound:
            self._lease = await self._kube.post(
                f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases",
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": self._node,
                        "namespace": NAMESPACE,
                        "labels": self._labels,
                        "ownerReferences": [self._owner(node_uid)],
                    },
                    "spec": self._spec(0),
                },
                request_timeout=self._timeout,
            )
            return
        await self._wait_for_other_holder(current)
        spec = current.get("spec") or {}
        current["spec"] = self._spec(int(spec.get("leaseTransitions") or 0) + 1)
        current.setdefault("metadata", {})["labels"] = {
            **(current["metadata"].get("labels") or {}),
            **self._labels,
        }
        owners = current["metadata"].setdefault("ownerReferences", [])
        if self._owner(node_uid) not in owners:
            current["metadata"]["ownerReferences"] = [self._owner(node_uid)]
        self._lease = await self._kube.put(self._path, current, request_timeout=self._timeout)

    async def _wait_for_other_holder(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        renewed = _parse_time(spec.get("renewTime"))
        if not holder or holder.split("/", maxsplit=1)[0] == self._identity or renewed is None:
            return
        expires = renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 40))
        wait = (expires - datetime.now(UTC)).total_seconds()
        if wait > 0:
            log.warning(
                "lease held by %s until %s; waiting for it to expire before serving this node",
                holder,
                expires.isoformat(),
                extra=self._extra,
            )
            await anyio.sleep(wait)
            # Whoever held it may have renewed meanwhile: start over from a fresh read.
            raise KubeConflict(409, "HeldByOther", f"lease was held by {holder}", "GET", self._path)

    async def _renew(self) -> None:
        if self._lease is None:
            await self._acquire()
            return
        renewed = dict(self._lease)
        renewed["spec"] = {**(self._lease.get("spec") or {}), "holderIdentity": self.holder}
        renewed["spec"]["renewTime"] = micro_timestamp(datetime.now(UTC))
        try:
            # PUT the cached object, no GET first: one write per renewal.
            self._lease = await self._kube.put(self._path, renewed, request_timeout=self._timeout)
        except (KubeConflict, KubeNotFound):
            self._lease = None
            await self._acquire()
