"""One virtual node: a SaladCloud project seen by Kubernetes as a Node.

Start-up order matters: the Node and its Lease come first, because a node that is
slow to heartbeat after a restart goes NotReady and gets its pods evicted; the pod
list comes next, and only then does the reconciler act. Every part runs in the
node's own task group, so cancelling the node (shutdown, config change, a crash
the supervisor restarts) stops all of it and nothing else.
"""

from __future__ import annotations

import logging
import time

import anyio
from anyio.abc import TaskStatus
from kubernetes_asyncio.client.api_client import ApiClient

from .events import EventRecorder
from .kube import KubeClient
from .lease import LeaseKeeper
from .metrics import NodeMetrics
from .node_reporter import NodeReporter
from .pod_watch import PodWatch
from .reconciler import Reconciler
from .saladcloud.client import SaladClient
from .settings import NodeSettings

log = logging.getLogger(__name__)

_REQUESTS_PER_POLL = 1.5
"""One list per poll, plus now and then an instance read for a readiness probe."""


class VirtualNode:
    def __init__(
        self,
        settings: NodeSettings,
        *,
        kube_api: ApiClient,
        salad: SaladClient,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.settings = settings
        self._kube = KubeClient(kube_api, node=settings.name, metrics=metrics)
        self._salad = salad
        self._metrics = metrics
        self.reporter = NodeReporter(self._kube, settings)
        self.lease = LeaseKeeper(
            self._kube,
            settings.name,
            ensure_node=self.reporter.ensure_registered,
            identity=settings.identity,
            duration_seconds=settings.lease_duration_seconds,
            renew_interval=settings.lease_renew_interval,
            metrics=metrics,
        )
        self.events = EventRecorder(self._kube, settings.name)
        self.pods = PodWatch(
            self._kube,
            settings.name,
            on_change=lambda: self.reconciler.poke(),  # noqa: PLW0108 - built below
            resync_interval=settings.resync_interval,
        )
        self.reconciler = Reconciler(
            settings=settings,
            kube=self._kube,
            salad=salad,
            pods=self.pods,
            events=self.events,
            reporter=self.reporter,
            metrics=metrics,
            poll_interval=self._poll_interval,
        )
        self._extra = {"node": settings.name, "project": settings.project}

    @property
    def salad(self) -> SaladClient:
        """The node's SaladCloud client (the kubelet API reads logs through it)."""
        return self._salad

    def _poll_interval(self) -> float:
        """The configured interval, stretched so polls use no more than this node's
        share of its API key's budget (more nodes on one key: each polls less often)."""
        try:
            fair = self._salad.limiter.budget.poll_interval(
                self.settings.name, requests_per_poll=_REQUESTS_PER_POLL
            )
        except KeyError:
            fair = 0.0
        return max(self.settings.poll_interval, fair)

    @property
    def ready(self) -> bool:
        """Registered and heartbeating: what /readyz reports per node."""
        renewed = self.lease.last_renewal
        return (
            bool(self.reporter.uid)
            and renewed is not None
            and time.monotonic() - renewed < 2.5 * self.settings.lease_renew_interval
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve the node until cancelled; ``task_status`` fires once it is Ready and has
        listed its pods."""
        try:
            await self.reporter.register_retrying()
            async with anyio.create_task_group() as parts:
                await parts.start(self.lease.run)
                await parts.start(self.reporter.run)
                await parts.start(self.pods.run)
                log.info("node serving", extra=self._extra)
                task_status.started()
                parts.start_soon(self.reconciler.run)
        finally:
            # Its share of the API key's budget goes with the node: a restart or a
            # removal must not leave a silent share that dilutes the others'.
            self._salad.limiter.close()
