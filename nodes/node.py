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
from .kube import KubeClient, KubeError
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
        kube_concurrency: int = 16,
    ) -> None:
        self.settings = settings
        self._kube = KubeClient(
            kube_api, node=settings.name, metrics=metrics, concurrency=kube_concurrency
        )
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
            on_change=self._pods_changed,
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

    def _pods_changed(self, keys: set[str]) -> None:
        self.reconciler.poke(keys)

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
        await self.reporter.register_retrying()
        self.reconciler.kubernetes_version = await self._kubernetes_version()
        self.reconciler.cluster_id = await self._cluster_id()
        async with anyio.create_task_group() as parts:
            await parts.start(self.lease.run)
            await parts.start(self.reporter.run)
            await parts.start(self.pods.run)
            log.info("node serving", extra=self._extra)
            task_status.started()
            parts.start_soon(self.reconciler.run)

    async def _cluster_id(self) -> str:
        """The UID of kube-system: what tells this cluster's groups from another's."""
        try:
            namespace = await self._kube.get("/api/v1/namespaces/kube-system")
        except KubeError as error:
            log.warning(
                "cannot read the cluster's identity (namespace kube-system): %s; orphaned "
                "container groups will not be collected",
                error,
                extra=self._extra,
            )
            return ""
        return str(namespace["metadata"]["uid"])

    async def _kubernetes_version(self) -> str:
        try:
            info = await self._kube.get("/version")
        except KubeError as error:
            log.warning("could not read the API server version: %s", error, extra=self._extra)
            return ""
        return str(info.get("gitVersion") or "")
