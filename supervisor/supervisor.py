"""The process: one slot per configured node, shared pools, hot reload of the config.

Everything shared is created by the caller and passed in — the HTTP pool for
SaladCloud, the Kubernetes ``ApiClient``, the Prometheus registry, the per-key rate
budgets — and every node gets the same objects. Nodes never share anything else:
each runs in its own ``NodeSlot`` (own cancel scope, own restarts), so one node
failing, restarting or being replaced leaves the others' tasks untouched.

The projects file is polled by content hash (through symlinks, as a mounted
ConfigMap changes by a ``..data`` swap), together with every key file it names.
A change is loaded and checked in full before anything is touched: an invalid file
changes nothing, and its problems are logged with file, line and key path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from anyio.abc import TaskGroup, TaskStatus
from kubernetes_asyncio.client.api_client import ApiClient
from prometheus_client import CollectorRegistry

from config import (
    ConfigError,
    NodeConfig,
    ProcessSettings,
    ProjectsConfig,
    content_hash,
    load_projects,
)
from nodes.cluster import ClusterFacts, read_cluster_facts
from nodes.kube import KubeClient
from nodes.metrics import NodeMetrics
from nodes.node import VirtualNode
from nodes.node_cache import NodeCache
from nodes.saladcloud.client import SaladClient
from nodes.saladcloud.ratelimit import KeyBudgets
from nodes.saladcloud.transport import saladcloud_http_client
from nodes.settings import NodeSettings, default_identity

from . import __version__
from .api_server import wait_for_api_server
from .decommission import decommission
from .endpoints import Endpoints, LoopLag
from .kubeconfig import api_client, resolve_kube_source
from .kubelet import KubeletMetrics, KubeletOptions, KubeletServer, ServedNode, served
from .logs import Redactor
from .metrics import ProcessMetrics
from .slot import NodeSlot, Runnable

log = logging.getLogger(__name__)

_RETRY_INVALID_AFTER = 30.0

NodeBuilder = Callable[[NodeConfig], Runnable]
NodeWrapper = Callable[[NodeConfig, NodeBuilder], Runnable]
"""Builds a node given the default builder: how a test puts a faulty node in a slot."""


@dataclass
class Shared:
    """What every node of the process shares; created once, by the caller."""

    kube_api: ApiClient
    http: httpx.AsyncClient
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    redactor: Redactor = field(default_factory=Redactor)

    def __post_init__(self) -> None:
        self.node_metrics = NodeMetrics(self.registry)
        self.process_metrics = ProcessMetrics(self.registry)
        self.kubelet_metrics = KubeletMetrics(self.registry)
        self.budgets = KeyBudgets()


class Supervisor:
    def __init__(
        self,
        settings: ProcessSettings,
        shared: Shared,
        *,
        environ: Mapping[str, str],
        node_ip: str = "127.0.0.1",
        identity: str | None = None,
        wrap_node: NodeWrapper | None = None,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self._environ = environ
        self._node_ip = node_ip
        self._identity = identity or default_identity()
        self._wrap_node = wrap_node
        self.metrics = shared.process_metrics
        self.metrics.nodes_running.set_function(lambda: float(sum(self.readiness().values())))
        self.lag = LoopLag(self.metrics)
        self.endpoints = Endpoints(shared.registry, self.lag, self.readiness)
        self.config: ProjectsConfig | None = None
        self.slots: dict[str, NodeSlot] = {}
        self._retiring: dict[str, anyio.CancelScope] = {}
        """Nodes being decommissioned; cancelling the scope takes the removal back."""
        self._kube = KubeClient(shared.kube_api, node="-supervisor-")
        self.node_cache = NodeCache(self._kube.unlimited())
        self._cluster = ClusterFacts()
        self._group: TaskGroup | None = None
        self.kubelet = KubeletServer(
            KubeletOptions(
                address=settings.kubelet_address,
                cert_file=settings.kubelet_tls_cert_file,
                key_file=settings.kubelet_tls_key_file,
                addresses=(node_ip,),
                follow_interval=settings.kubelet_follow_interval_seconds,
                max_followers_per_key=settings.kubelet_max_followers_per_key,
            ),
            kube=KubeClient(shared.kube_api, node="-kubelet-"),
            nodes=self.served_nodes,
            metrics=shared.kubelet_metrics,
        )

    # --- readiness ---------------------------------------------------------------------

    def readiness(self) -> dict[str, bool]:
        # Also read by /metrics on a worker thread while the loop may change the slots.
        configured = list(self.config.nodes_by_name) if self.config else []
        slots = dict(self.slots)
        return {name: (slot := slots.get(name)) is not None and slot.ready for name in configured}

    def served_nodes(self) -> dict[str, ServedNode]:
        """The nodes whose kubelet API this process answers: every running slot's."""
        return served(slot.node for slot in self.slots.values())

    # --- building nodes ------------------------------------------------------------------

    def node_settings(self, node: NodeConfig) -> NodeSettings:
        s = self.settings
        return NodeSettings(
            name=node.name,
            organization=node.organization,
            project=node.project,
            labels=dict(node.labels),
            taints=tuple(t.model_dump(exclude_none=True) for t in node.taints),
            capacity=dict(node.capacity),
            node_ip=self._node_ip,
            kubelet_port=self.kubelet.port or NodeSettings.kubelet_port,
            identity=self._identity,
            version=__version__,
            cluster=self._cluster,
            poll_interval=node.poll_interval,
            lease_duration_seconds=s.lease_duration_seconds,
            lease_renew_interval=s.lease_renew_interval_seconds,
            status_report_interval=s.node_status_interval_seconds,
            mutation_grace=s.shutdown_grace_seconds,
            default_country_codes=tuple(node.default_country_codes),
            default_gpu_classes=tuple(node.default_gpu_classes),
            default_priority=node.default_priority,
            allowed_namespaces=(
                None if node.allowed_namespaces is None else frozenset(node.allowed_namespaces)
            ),
            namespace_selector=node.namespace_selector,
            managed_by=s.managed_by,
        )

    def _build(self, node: NodeConfig) -> Runnable:
        if self._wrap_node is not None:
            return self._wrap_node(node, self.build_default_node)
        return self.build_default_node(node)

    def build_default_node(self, node: NodeConfig) -> Runnable:
        """A virtual node for ``node`` on the shared pools, with its key budget share."""
        shared = self.shared
        if node.api_key_missing is not None:
            # Serves its Node (tainted, saying why) and makes no SaladCloud call; the key
            # file's appearance changes the node's fingerprint, which restarts it.
            return VirtualNode(
                self.node_settings(node),
                kube_api=shared.kube_api,
                salad=None,
                metrics=shared.node_metrics,
                key_missing=node.api_key_missing,
            )
        budget = shared.budgets.budget_for(node.api_key, node.salad_api_url, node.api_rate_limit)
        limiter = budget.share(node.name, node.rate_limit_share)
        salad = SaladClient(
            shared.http,
            base_url=node.salad_api_url,
            api_key=node.api_key,
            organization=node.organization,
            project=node.project,
            limiter=limiter,
            node=node.name,
            metrics=shared.node_metrics,
        )
        return VirtualNode(
            self.node_settings(node),
            kube_api=shared.kube_api,
            salad=salad,
            metrics=shared.node_metrics,
            node_cache=self.node_cache,
        )

    # --- running -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Load the config (an invalid one at start-up is fatal), serve every node, and
        follow the file until cancelled."""
        config = load_projects(self.settings.config, self._environ, allow_missing_keys=True)
        async with anyio.create_task_group() as group:
            self._group = group
            group.start_soon(self.lag.run)
            await group.start(self.endpoints.serve, self.settings.metrics_address)
            # Said once for the process, not by every node registering in vain.
            server = self.shared.kube_api.configuration.host or "(no host)"
            await wait_for_api_server(self._kube, server)
            self._cluster = await read_cluster_facts(self._kube)
            # After the wait: its retries would otherwise say the same thing again.
            group.start_soon(self.node_cache.run)
            # Before any node: a node advertises the port the kubelet API really has.
            await group.start(self.kubelet.serve)
            self._apply(config)
            group.start_soon(self._follow_config)
            task_status.started()

    def _start_slot(self, node: NodeConfig) -> None:
        assert self._group is not None
        s = self.settings
        slot = NodeSlot(
            node.name,
            node.project,
            lambda: self._build(node),
            metrics=self.metrics,
            backoff_initial=s.restart_backoff_initial_seconds,
            backoff_max=s.restart_backoff_max_seconds,
        )
        self.slots[node.name] = slot
        self._group.start_soon(slot.run, name=f"node {node.name}")

    def _apply(self, new: ProjectsConfig) -> None:
        """Start added nodes, restart changed ones, retire removed ones."""
        assert self._group is not None
        old = self.config
        self.config = new
        for node in new.nodes:
            self.shared.redactor.add(node.api_key.get_secret_value(), owner=node.name)
        self.metrics.nodes_configured.set(len(new.nodes))
        if old is None:
            for node in new.nodes:
                self._start_slot(node)
            return
        diff = old.diff(new)
        for name, change in diff.changed.items():
            log.info(
                "node changed (%s); restarting it",
                ", ".join(change.changed_keys),
                extra={"node": name},
            )
            self._group.start_soon(self._guarded, self._replace, change.new)
        for name, node in diff.added.items():
            log.info("node added", extra={"node": name, "project": node.project})
            retiring = self._retiring.get(name)
            if retiring is not None:
                # Removed and added back (a reverted edit): stop draining it.
                retiring.cancel()
            if retiring is not None or name in self.slots:
                self._group.start_soon(self._guarded, self._replace, node)
            else:
                self._start_slot(node)
        for name in diff.removed:
            self._group.start_soon(self._guarded, self._retire, name)

    async def _guarded(self, action: Callable[[Any], Awaitable[None]], argument: Any) -> None:
        """Run a config-driven task; its failure is logged, never shared with the nodes."""
        try:
            await action(argument)
        except Exception:
            log.exception(
                "applying the projects file failed (%s)", getattr(action, "__name__", action)
            )

    async def _replace(self, node: NodeConfig) -> None:
        """Stop the running incarnation of a node (if any), then start the new config."""
        while node.name in self._retiring:
            await anyio.sleep(0.1)
        current = self.slots.get(node.name)
        if current is not None:
            current.stop()
            await current.stopped.wait()
            self.shared.budgets.discard_unused()
        # Only if this is still what the file says (compared as the diff compares:
        # moving a key file without changing the key is no change).
        wanted = self.config.nodes_by_name.get(node.name) if self.config else None
        unchanged = wanted is not None and wanted.fingerprint == node.fingerprint
        # ... and unless a concurrent replacement has started it already.
        if wanted is not None and unchanged and self.slots.get(node.name) is current:
            self._start_slot(wanted)

    async def _retire(self, name: str) -> None:
        slot = self.slots.get(name)
        if slot is None or name in self._retiring:
            return

        async def stop() -> None:
            slot.stop()
            await slot.stopped.wait()

        with anyio.CancelScope() as scope:
            self._retiring[name] = scope
            try:
                await decommission(
                    self._kube,
                    name,
                    self.settings.decommission_policy,
                    stop,
                    self.settings.drain_timeout_seconds,
                )
            finally:
                del self._retiring[name]
        if scope.cancelled_caught:
            log.info("removal taken back: the node stays", extra={"node": name})
            return
        self.metrics.decommissions.labels(policy=self.settings.decommission_policy.value).inc()
        self.shared.node_metrics.forget_node(name)
        self.shared.budgets.discard_unused()
        if self.slots.get(name) is slot:
            del self.slots[name]

    async def _follow_config(self) -> None:
        assert self.config is not None
        seen = dict(self.config.source_hashes)
        failed_at: float | None = None
        while True:
            await anyio.sleep(self.settings.config_poll_interval_seconds)
            try:
                seen, failed_at = self._check_config(seen, failed_at)
            except Exception:
                log.exception("following the projects file failed; trying again")

    def _check_config(
        self, seen: dict[Path, str], failed_at: float | None
    ) -> tuple[dict[Path, str], float | None]:
        """Reload the projects file if it (or a key file) changed; return the new state:
        the hashes last acted on, and when the file was last found invalid."""
        path = self.settings.config
        watched = self.config.watched_paths() if self.config else (path,)
        now = {p: content_hash(p) for p in {path, *watched, *seen}}
        retry = failed_at is not None and time.monotonic() - failed_at > _RETRY_INVALID_AFTER
        if now == seen and not retry:
            return seen, failed_at
        try:
            new = load_projects(path, self._environ, allow_missing_keys=True)
        except ConfigError as error:
            if now != seen:
                self.metrics.config_reloads.labels(result="invalid").inc()
                log.error("projects file rejected; the previous config keeps running:\n%s", error)
            return now, time.monotonic()
        self.metrics.config_reloads.labels(result="applied").inc()
        self._apply(new)
        return dict(new.source_hashes), None


async def kube_api_client(
    settings: ProcessSettings, environ: Mapping[str, str] = os.environ
) -> ApiClient:
    """The one Kubernetes client of the process: ``--kubeconfig``, else ``KUBECONFIG``,
    else ``~/.kube/config``, else in-cluster (see ``supervisor.kubeconfig``)."""
    source = resolve_kube_source(settings.kubeconfig, environ)
    return await api_client(source, settings.kube_max_connections, environ)


@contextlib.asynccontextmanager
async def running(
    settings: ProcessSettings,
    *,
    kube_api: ApiClient | None = None,
    redactor: Redactor | None = None,
    environ: Mapping[str, str] = os.environ,
    **options: Any,
) -> AsyncIterator[Supervisor]:
    """The supervisor serving in the background until the block ends, on pools built
    here (the Kubernetes client from ``settings`` unless one is given); then its nodes
    stop and the pools close. ``options`` go to ``Supervisor``."""
    async with contextlib.AsyncExitStack() as pools:
        if kube_api is None:
            kube_api = await kube_api_client(settings, environ)
            pools.push_async_callback(kube_api.close)
        http = await pools.enter_async_context(
            saladcloud_http_client(settings.http_limits(), settings.http_timeout(), environ=environ)
        )
        shared = Shared(kube_api=kube_api, http=http, redactor=redactor or Redactor())
        supervisor = Supervisor(settings, shared, environ=environ, **options)
        async with anyio.create_task_group() as group:
            await group.start(supervisor.run)
            try:
                yield supervisor
            finally:
                group.cancel_scope.cancel()
