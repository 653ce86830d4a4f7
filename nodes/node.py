"""One virtual node: a SaladCloud project seen by Kubernetes as a Node.

Start-up order matters: the Lease comes first, because it says whether the node is
ours to serve at all (and a node that is slow to heartbeat after a restart goes
NotReady and gets its pods evicted); then the Node; the pod list next, and only then
does the reconciler act. Every part runs in the node's own task group, so cancelling
the node (shutdown, handoff, config change, a crash the supervisor restarts) stops
all of it and nothing else; losing the Lease raises ``LeaseLost`` out of that group.

Every Kubernetes write of the node passes its ``Tenure`` first (the lease keeper's own
writes excepted), and so does every SaladCloud mutation when the caller built the
``SaladClient`` with ``tenure.guard_salad``: one gate, at the edge, for all of them.

A node whose API key is missing (its Secret not created yet) still registers and
heartbeats, so it stays Ready and its pods are not evicted; it reports
``SaladCloudReachable=False`` with reason ``APIKeyMissing``, carries the unavailable
taint, and neither watches pods nor calls SaladCloud until it is restarted with a key.
"""

from __future__ import annotations

import contextlib
import logging
import time

import anyio
from anyio.abc import TaskStatus
from kubernetes_asyncio.client.api_client import ApiClient

from .events import EventRecorder
from .kube import KubeClient
from .lease import Claim, LeaseKeeper
from .metrics import NodeMetrics
from .node_cache import NodeCache
from .node_object import SaladHealth
from .node_reporter import NodeReporter
from .pod_watch import PodWatch
from .reconciler import Reconciler
from .saladcloud.client import SaladClient
from .settings import NodeSettings
from .tenure import Tenure

log = logging.getLogger(__name__)

KEY_MISSING_REASON = "APIKeyMissing"

_REQUESTS_PER_POLL = 1.5
"""One list per poll, plus now and then an instance read for a readiness probe."""


class VirtualNode:
    def __init__(
        self,
        settings: NodeSettings,
        *,
        kube_api: ApiClient,
        salad: SaladClient | None,
        metrics: NodeMetrics | None = None,
        node_cache: NodeCache | None = None,
        key_missing: str = "no API key",
        tenure: Tenure | None = None,
        claimed: Claim | None = None,
        starting: anyio.CapacityLimiter | None = None,
    ) -> None:
        """``salad`` is None for a node without an API key; ``key_missing`` then says
        why, and what to do, on the node's condition."""
        self.settings = settings
        self._starting = starting
        """Shared by the nodes of a process: how many start up at once. Hundreds taken
        over, or claimed at start-up, would otherwise start at once, and the event-loop
        lag of that would delay every Lease renewal of the process."""
        self.tenure = tenure or Tenure(settings.name, node_deadline=settings.node_deadline)
        self._kube = KubeClient(
            kube_api, node=settings.name, metrics=metrics, guard=self.tenure.guard_kube
        )
        self._salad = salad
        self._metrics = metrics
        if salad is not None:
            # Requests queued for a token when the node stops being ours stop waiting
            # then, even inside the reconciler's shield for mutations under way.
            self.tenure.on_end(salad.limiter.close)
        # The process shares one cache of its Nodes; a node running alone keeps its own.
        self._own_cache = node_cache is None
        self.node_cache = node_cache or NodeCache.of_one(self._kube.unlimited(), settings.name)
        self.reporter = NodeReporter(self._kube, settings, self.node_cache)
        self.lease = LeaseKeeper(
            # The keeper's writes are what the gate is made of: they do not pass it.
            KubeClient(kube_api, node=settings.name, metrics=metrics),
            settings.name,
            tenure=self.tenure,
            node_uid=lambda: self.reporter.uid,
            ensure_node=self.reporter.ensure_registered,
            identity=settings.identity,
            holder=settings.holder,
            claimed=claimed,
            duration_seconds=settings.lease_duration_seconds,
            renew_interval=settings.lease_renew_interval,
            metrics=metrics,
            labels=settings.managed_by_labels,
        )
        self.events = EventRecorder(self._kube, settings.name)
        self.pods = PodWatch(
            self._kube,
            settings.name,
            on_change=lambda: self.reconciler.poke(),  # noqa: PLW0108 - built below
            resync_interval=settings.resync_interval,
        )
        self._reconciler = (
            None
            if salad is None
            else Reconciler(
                settings=settings,
                kube=self._kube,
                salad=salad,
                pods=self.pods,
                events=self.events,
                reporter=self.reporter,
                metrics=metrics,
                poll_interval=self._poll_interval,
                owned=lambda: self.tenure.owned,
            )
        )
        self._extra = {"node": settings.name, "project": settings.project}
        if salad is None:
            self.reporter.set_health(SaladHealth(False, KEY_MISSING_REASON, key_missing))
            if metrics is not None:
                metrics.saladcloud_up.labels(node=settings.name).set(0)

    @property
    def reconciler(self) -> Reconciler:
        if self._reconciler is None:
            raise RuntimeError(f"node {self.settings.name} has no API key, so no reconciler")
        return self._reconciler

    @property
    def salad(self) -> SaladClient | None:
        """The node's SaladCloud client (the kubelet API reads logs through it); None
        while the node has no API key."""
        return self._salad

    def _poll_interval(self) -> float:
        """The configured interval, stretched so polls use no more than this node's
        share of its API key's budget (more nodes on one key: each polls less often)."""
        if self._salad is None:
            return self.settings.poll_interval
        try:
            fair = self._salad.limiter.budget.poll_interval(
                self.settings.name, requests_per_poll=_REQUESTS_PER_POLL
            )
        except KeyError:
            fair = 0.0
        return max(self.settings.poll_interval, fair)

    @property
    def ready(self) -> bool:
        """Registered, heartbeating and owned: what /readyz reports per node."""
        renewed = self.lease.last_renewal
        return (
            self.tenure.owned
            and bool(self.reporter.uid)
            and renewed is not None
            and time.monotonic() - renewed < 2.5 * self.settings.lease_renew_interval
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve the node until cancelled; ``task_status`` fires once it is Ready and has
        listed its pods. Raises ``LeaseLost`` when the node is not (or no longer) ours."""
        try:
            async with anyio.create_task_group() as parts:
                if self._own_cache:
                    parts.start_soon(self.node_cache.run)
                await parts.start(self.lease.run)
                # The heartbeat runs from here on; the rest of starting up (Node, pod
                # list, watches) waits its turn among the nodes starting together.
                async with self._starting or contextlib.nullcontext():
                    await self.reporter.register_retrying()
                    await self.lease.renew_now()  # now naming the Node as registered
                    await parts.start(self.reporter.run)
                    if self._reconciler is None:
                        # Registered, heartbeating, tainted, saying why: nothing else to
                        # do without a key (the supervisor restarts the node with one).
                        task_status.started()
                        return
                    await parts.start(self.pods.run)
                log.info("node serving", extra=self._extra)
                task_status.started()
                parts.start_soon(self._reconciler.run)
        finally:
            # Its share of the API key's budget goes with the node: a restart or a
            # removal must not leave a silent share that dilutes the others'.
            if self._salad is not None:
                self._salad.limiter.close()
