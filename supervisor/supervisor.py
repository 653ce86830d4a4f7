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

Several replicas may run side by side (the Helm chart runs two). Each announces itself
with a membership Lease (``membership.py``) listing the nodes its file names; every
replica computes the same assignment of nodes to live replicas (``assignment.py``),
claims the Leases of the nodes assigned to it (``claims.py``, ``takeover.py``), and
hands off the nodes assigned to another: it stops the node, then releases its Lease so
that the new owner takes it at once. A replica that is the only one simply serves
every node, as a single process always did. Only the owner decommissions a node
removed from the file, and a replica whose file does not list a node never takes it.
On shutdown (SIGTERM) a replica hands off everything (``shutdown``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import time
import uuid
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
from nodes.kube import KubeClient, KubeError
from nodes.lease import Claim, LeaseKeeper, release
from nodes.metrics import NodeMetrics
from nodes.node import VirtualNode
from nodes.node_cache import NodeCache
from nodes.saladcloud.client import SaladClient
from nodes.saladcloud.ratelimit import KeyBudgets
from nodes.saladcloud.transport import saladcloud_http_client
from nodes.settings import MANAGED_BY_LABEL, NodeSettings
from nodes.tenure import Tenure

from . import __version__, heap
from .api_server import wait_for_api_server
from .assignment import assign, demands
from .claims import Claimer
from .decommission import decommission
from .endpoints import Endpoints, LoopLag
from .kubeconfig import api_client, resolve_kube_source
from .kubelet import KubeletMetrics, KubeletOptions, KubeletServer, ServedNode, served
from .logs import Redactor, node_context
from .membership import MemberKeeper, MemberView, MemberWatch, Phase, resolve_identity
from .metrics import ProcessMetrics
from .slot import NodeSlot, Runnable
from .takeover import Timing

log = logging.getLogger(__name__)

_RETRY_INVALID_AFTER = 30.0
_HANDOFF_POLL = 0.5
"""How soon a replica waiting for a handoff looks at the node's Lease again (at first)."""
_RELEASE_TIMEOUT = 5.0
_RELEASE_ATTEMPTS = 6
_STARTING_AT_ONCE = 8
"""Nodes that register and list their pods at the same time (their Leases are renewed
meanwhile): a takeover or a start-up of hundreds must not stall the event loop that
renews every Lease of the process."""

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
        self.identity = resolve_identity(
            identity or settings.identity, environ, socket.gethostname()
        )
        self.holder = f"{self.identity}/{uuid.uuid4().hex[:8]}"
        """Who holds this process's Leases: its identity, and this run of it."""
        self.lease_namespace = settings.lease_namespace or environ.get("POD_NAMESPACE") or "default"
        self._wrap_node = wrap_node
        self.metrics = shared.process_metrics
        self.metrics.nodes_running.set_function(lambda: float(sum(self.readiness().values())))
        self.metrics.nodes_owned.set_function(lambda: float(len(self.slots)))
        self.lag = LoopLag(self.metrics)
        self.endpoints = Endpoints(
            shared.registry, self.lag, self.readiness, membership=self.membership_problem
        )
        self.config: ProjectsConfig | None = None
        self.slots: dict[str, NodeSlot] = {}
        """The nodes this replica holds and serves."""
        self._retiring: dict[str, anyio.CancelScope] = {}
        """Nodes being decommissioned; cancelling the scope takes the removal back."""
        self._claiming: dict[str, anyio.CancelScope] = {}
        """Nodes whose Lease this replica is waiting to claim."""
        self._busy: set[str] = set()
        """Nodes being handed off, replaced or retired: placement leaves them alone."""
        self.plan: dict[str, str] = {}
        """The last assignment: node -> the identity of the replica that should serve it."""
        self._stopping = False
        self._kube = KubeClient(shared.kube_api, node="-supervisor-")
        timeout = settings.ownership_timeout_seconds
        self.member = MemberKeeper(
            self._kube,
            self.lease_namespace,
            self.identity,
            self.holder,
            ownership_timeout=timeout,
            on_change=self._replan,
        )
        self.view = MemberView(timeout)
        self._watch = MemberWatch(
            self._kube, self.lease_namespace, self.view, self._members_changed
        )
        # Claims and releases have a client of their own: a takeover claims a dead
        # replica's nodes all at once, a shutdown releases all of its own.
        self._leases = KubeClient(shared.kube_api, node="-supervisor-", concurrency=64)
        self._claimer = Claimer(
            kube=self._leases,
            holder=self.holder,
            view=self.view,
            standing=self.member,
            members_namespace=self.lease_namespace,
            timing=Timing(
                ownership_timeout=timeout,
                # A holder that is no member fences on its node's Lease alone, within
                # the renew interval plus two thirds of the timeout.
                unknown_holder_timeout=settings.lease_renew_interval_seconds + timeout,
                poll=_HANDOFF_POLL,
            ),
            lease_duration_seconds=settings.lease_duration_seconds,
            request_timeout=min(settings.kube_request_timeout_seconds, timeout / 3),
            labels={MANAGED_BY_LABEL: settings.managed_by} if settings.managed_by else {},
        )
        self._starting = anyio.CapacityLimiter(_STARTING_AT_ONCE)
        self._placement = anyio.Event()
        self._settled = anyio.Event()
        """Set once the first placement has looked at every node it gave this replica."""
        self._first_looks: set[str] | None = None
        self._epoch_seen = 0
        """The membership epoch placement last acted in; -1 while lapsed."""
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
        """Every node of the file this replica should serve (all of them until an
        assignment says otherwise), and whether it does. Also read by /metrics on a
        worker thread while the loop may change these: it reads copies."""
        configured = list(self.config.nodes_by_name) if self.config else []
        slots, plan = dict(self.slots), dict(self.plan)
        return {
            name: (slot := slots.get(name)) is not None and slot.ready
            for name in configured
            if plan.get(name, self.identity) == self.identity or name in slots
        }

    def served_nodes(self) -> dict[str, ServedNode]:
        """The nodes whose kubelet API this process answers: those it owns now. A node's
        address is its owner's (a takeover writes the new owner's), and a node this
        replica lost is never answered for, even while its slot winds down."""
        return served(
            slot.node
            for slot in list(self.slots.values())
            if isinstance(slot.node, VirtualNode) and slot.node.tenure.owned
        )

    def membership_problem(self) -> str | None:
        """Why this replica is not a member in good standing (/readyz); None if it is."""
        if not self.member.valid(time.monotonic()):
            return f"not a member: membership Lease {self.member.name} not renewed"
        if not self.view.synced:
            return "the other replicas' membership Leases are not listed yet"
        return None

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
            identity=self.identity,
            holder=self.holder,
            version=__version__,
            cluster=self._cluster,
            poll_interval=node.poll_interval,
            lease_duration_seconds=s.lease_duration_seconds,
            lease_renew_interval=s.lease_renew_interval_seconds,
            ownership_timeout=s.ownership_timeout_seconds,
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

    def _build(self, node: NodeConfig, claim: Claim | None) -> Runnable:
        default = functools.partial(self.build_default_node, claim=claim)
        if self._wrap_node is not None:
            return self._wrap_node(node, default)
        return default(node)

    def build_default_node(self, node: NodeConfig, claim: Claim | None = None) -> Runnable:
        """A virtual node for ``node`` on the shared pools, with its key budget share,
        gated by a tenure of its own; ``claim`` is its Lease as just taken, if it was."""
        shared = self.shared
        settings = self.node_settings(node)
        if node.api_key_missing is not None:
            # Serves its Node (tainted, saying why) and makes no SaladCloud call; the key
            # file's appearance changes the node's fingerprint, which restarts it.
            return VirtualNode(
                settings,
                kube_api=shared.kube_api,
                salad=None,
                metrics=shared.node_metrics,
                node_cache=self.node_cache,
                key_missing=node.api_key_missing,
                tenure=Tenure(
                    node.name, node_deadline=settings.node_deadline, standing=self.member
                ),
                claimed=claim,
                starting=self._starting,
            )
        budget = shared.budgets.budget_for(node.api_key, node.salad_api_url, node.api_rate_limit)
        limiter = budget.share(node.name, node.rate_limit_share)
        tenure = Tenure(node.name, node_deadline=settings.node_deadline, standing=self.member)
        salad = SaladClient(
            shared.http,
            base_url=node.salad_api_url,
            api_key=node.api_key,
            organization=node.organization,
            project=node.project,
            limiter=limiter,
            node=node.name,
            metrics=shared.node_metrics,
            guard=tenure.guard_salad,
        )
        return VirtualNode(
            settings,
            kube_api=shared.kube_api,
            salad=salad,
            metrics=shared.node_metrics,
            node_cache=self.node_cache,
            tenure=tenure,
            claimed=claim,
            starting=self._starting,
        )

    # --- running -----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Load the config (an invalid one at start-up is fatal), join the replica set,
        serve the nodes assigned to this replica, and follow the file until cancelled."""
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
            # Neither waits: without membership (RBAC missing, say) the process still
            # answers /healthz and says why /readyz fails, while it keeps trying.
            group.start_soon(self.member.run)
            group.start_soon(self._watch.run)
            group.start_soon(self._place_forever)
            group.start_soon(self._follow_config)
            # Started means the free nodes are being served (as a lone process's always
            # were at once): bounded, since joining needs the API server.
            with anyio.move_on_after(self.settings.ownership_timeout_seconds):
                await self._settled.wait()
            task_status.started()

    def _start_slot(self, node: NodeConfig, claim: Claim | None) -> None:
        """Serve ``node``, whose Lease this process holds (``claim``: just taken)."""
        assert self._group is not None
        s = self.settings
        first = [claim] if claim is not None else []

        def build() -> Runnable:
            # The first incarnation starts from the claim; a restart claims its own.
            return self._build(node, first.pop() if first else None)

        slot = NodeSlot(
            node.name,
            node.project,
            build,
            metrics=self.metrics,
            backoff_initial=s.restart_backoff_initial_seconds,
            backoff_max=s.restart_backoff_max_seconds,
        )
        self.slots[node.name] = slot
        self._group.start_soon(self._run_slot, slot, name=f"node {node.name}")

    async def _run_slot(self, slot: NodeSlot) -> None:
        try:
            await slot.run()
        finally:
            if self.slots.get(slot.name) is slot:
                del self.slots[slot.name]
                # Served elsewhere now (or nowhere): its series here would only show a
                # Lease age growing for ever and pods counted twice.
                self.shared.node_metrics.forget_node(slot.name)
                with contextlib.suppress(KeyError):
                    self.metrics.node_restarts.remove(slot.name)
                # Its objects were frozen with the rest at start-up (heap.freeze): let
                # the collector have them, or every handoff would leak a node.
                heap.release_frozen()
            self.shared.budgets.discard_unused()
            if slot.lost is not None:
                self.metrics.fencing.labels(reason=slot.lost.kind).inc()
            self._replan()

    def _apply(self, new: ProjectsConfig) -> None:
        """Announce the file's nodes; restart changed ones and retire removed ones that
        run here. Which nodes run here at all is placement's business."""
        assert self._group is not None
        old = self.config
        self.config = new
        for node in new.nodes:
            self.shared.redactor.add(node.api_key.get_secret_value(), owner=node.name)
        self.metrics.nodes_configured.set(len(new.nodes))
        self.member.announce({node.name: node.weight for node in new.nodes})
        self.shared.budgets.set_total_weights(
            (node.api_key, node.salad_api_url, node.rate_limit_share) for node in new.nodes
        )
        self._replan()
        if old is None:
            return
        diff = old.diff(new)
        for name, change in diff.changed.items():
            if name not in self.slots:
                continue
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
                self._group.start_soon(self._guarded, self._replace, node)
        for name in diff.removed:
            claiming = self._claiming.pop(name, None)
            if claiming is not None:
                claiming.cancel()
            if name in self.slots:
                self._group.start_soon(self._guarded, self._retire, name)

    async def _guarded(self, action: Callable[[Any], Awaitable[None]], argument: Any) -> None:
        """Run a config-driven task; its failure is logged, never shared with the nodes."""
        try:
            await action(argument)
        except Exception:
            log.exception(
                "applying the projects file failed (%s)", getattr(action, "__name__", action)
            )

    async def _stop_slot(self, slot: NodeSlot, reason: str | None = None) -> LeaseKeeper | None:
        """Stop a node's incarnation; with a ``reason``, nothing more is sent for it
        from this moment (its tenure ends), not only once its tasks are cancelled.
        Returns the stopped incarnation's lease keeper, which can still release it."""
        node = slot.node
        keeper = node.lease if isinstance(node, VirtualNode) else None
        if reason is not None and isinstance(node, VirtualNode):
            node.tenure.end(reason)
        slot.stop()
        await slot.stopped.wait()
        return keeper

    async def _release(self, name: str, keeper: LeaseKeeper | None) -> bool:
        """Release a stopped node's Lease: from the Lease as its keeper last wrote it (one
        write), else read first (the node was between incarnations). Retried for a
        while: the replica it goes to waits for it (it would take the node from us only
        after our membership went silent)."""
        for attempt in range(_RELEASE_ATTEMPTS):
            try:
                if keeper is not None and attempt == 0:
                    return await keeper.release(request_timeout=_RELEASE_TIMEOUT)
                return await release(
                    self._leases, name, self.holder, request_timeout=_RELEASE_TIMEOUT
                )
            except KubeError as error:
                log.warning("releasing the node's Lease failed: %s", error)
                await anyio.sleep(min(8.0, 0.5 * 2**attempt))
        log.error("could not release the node's Lease; it is taken over once this replica stops")
        return False

    async def _replace(self, node: NodeConfig) -> None:
        """Stop the running incarnation of a node (if any), then start the new config;
        the Lease stays held, so the new incarnation takes it back at once."""
        while node.name in self._retiring:
            await anyio.sleep(0.1)
        self._busy.add(node.name)
        try:
            current = self.slots.get(node.name)
            keeper = None
            if current is not None:
                keeper = await self._stop_slot(current)
                self.shared.budgets.discard_unused()
            # Only if this is still what the file says (compared as the diff compares:
            # moving a key file without changing the key is no change).
            wanted = self.config.nodes_by_name.get(node.name) if self.config else None
            unchanged = wanted is not None and wanted.fingerprint == node.fingerprint
            # ... and unless something else has started it already.
            mine = self.plan.get(node.name, self.identity) == self.identity
            if (
                wanted is not None
                and unchanged
                and node.name not in self.slots
                and mine
                and not self._stopping
            ):
                self._start_slot(wanted, None)
            elif current is not None and node.name not in self.slots:
                # Not started again here (the plan moved it meanwhile, or a later edit
                # will start it): never hold a Lease that nobody serves. Released, it is
                # claimed by whoever it is assigned to, this replica included.
                with anyio.CancelScope(shield=True):
                    await self._release(node.name, keeper)
                if wanted is not None and not self._stopping and node.name not in self._claiming:
                    self._claim(wanted)
        finally:
            self._busy.discard(node.name)
            self._replan()

    async def _retire(self, name: str) -> None:
        """A node this replica serves left its file: keep serving it while another live
        replica's file still lists it (a ``helm upgrade`` reaching the replicas one after
        the other moves nothing), then decommission it here, as its owner."""
        slot = self.slots.get(name)
        if slot is None or name in self._retiring or name in self._busy:
            return
        with node_context(name, slot.project):
            await self._retire_slot(name, slot)

    def _listed_elsewhere(self, name: str) -> list[str]:
        return sorted(
            identity
            for identity, record in self.view.live(time.monotonic()).items()
            if identity != self.identity and name in record.nodes
        )

    async def _retire_slot(self, name: str, slot: NodeSlot) -> None:
        async def stop() -> None:
            await self._stop_slot(slot, "decommissioned")

        removed = False
        with anyio.CancelScope() as scope:
            self._retiring[name] = scope
            try:
                others = self._listed_elsewhere(name)
                if others:
                    log.info(
                        "node left this replica's file; %s still list it: serving it until"
                        " they do not",
                        ", ".join(others),
                    )
                while others and not slot.stopped.is_set():
                    await anyio.sleep(1.0)
                    others = self._listed_elsewhere(name)
                if slot.stopped.is_set():
                    # Stopped meanwhile (membership lapsed, Lease lost): not ours to
                    # decommission. Let a replica that lists it have it.
                    await release(self._leases, name, self.holder, request_timeout=_RELEASE_TIMEOUT)
                    return
                self._busy.add(name)
                # A Lease that could not be renewed in time is claimed again (nobody
                # else lists the node); one taken by another replica ends the slot.
                slot.reclaim_after_deadline = True

                def held() -> bool:
                    return not slot.stopped.is_set()

                def writable() -> bool:
                    node = slot.node
                    if node is None:
                        return False  # between incarnations: ownership not proven
                    return not isinstance(node, VirtualNode) or node.tenure.owned

                removed = await decommission(
                    self._kube,
                    name,
                    self.settings.decommission_policy,
                    stop,
                    self.settings.drain_timeout_seconds,
                    held=held,
                    writable=writable,
                    holder=self.holder,
                )
            finally:
                del self._retiring[name]
                self._busy.discard(name)
        if scope.cancelled_caught:
            log.info("removal taken back: the node stays")
            return
        if removed:
            self.metrics.decommissions.labels(policy=self.settings.decommission_policy.value).inc()
        self.shared.node_metrics.forget_node(name)
        self.shared.budgets.discard_unused()
        if self.slots.get(name) is slot:
            del self.slots[name]

    # --- placement: which nodes this replica serves ------------------------------------

    def _replan(self) -> None:
        """Something placement depends on changed: look again soon."""
        self._placement.set()

    def _members_changed(self) -> None:
        """A replica joined, left, went silent or changed its nodes: placement looks
        again, and so does every claim waiting on a Lease (a leaving replica deletes its
        membership Lease once it has released its nodes)."""
        self._replan()
        self._claimer.nudge()

    async def _place_forever(self) -> None:
        while True:
            now = time.monotonic()
            wakes = [t for t in (self._standing_deadline(now), self.view.next_silence(now)) if t]
            timeout = max(0.0, min(wakes) - now) + 0.01 if wakes else None
            with anyio.move_on_after(timeout if timeout is not None else float("inf")):
                await self._placement.wait()
            self._placement = anyio.Event()
            try:
                self._place()
            except Exception:
                log.exception("placement failed; trying again")

    def _standing_deadline(self, now: float) -> float | None:
        valid_until = self.member.valid_until
        return valid_until if valid_until > now else None

    def _place(self) -> None:
        """Take what the assignment gives this replica, hand off what it gives another,
        and stop everything the moment membership lapses."""
        if self._stopping or self.config is None:
            return
        now = time.monotonic()
        if not self.member.valid(now):
            if self.member.phase is Phase.MEMBER and self._epoch_seen == self.member.epoch:
                self._paused()
            return
        if self._epoch_seen != self.member.epoch:
            self._resumed()
        if self.view.synced:
            self._follow_plan(now)

    def _follow_plan(self, now: float) -> None:
        """Assign the nodes over the live replicas; claim this replica's, hand off the
        others'."""
        assert self.config is not None
        live = {identity: dict(record.nodes) for identity, record in self.view.live(now).items()}
        live[self.identity] = dict(self.member.nodes)
        self.metrics.members.set(len(live))
        self.plan = assign(demands(live), live)
        first = self._first_looks is None
        looks: set[str] = set()
        if first:
            self._first_looks = looks
        for node in self.config.nodes:
            name = node.name
            target = self.plan.get(name)
            if name in self._busy or name in self._retiring:
                continue
            if name in self.slots:
                if target is not None and target != self.identity:
                    log.info(
                        "node assigned to %s: handing it over",
                        target,
                        extra={"node": name, "project": node.project},
                    )
                    self._busy.add(name)
                    assert self._group is not None
                    self._group.start_soon(self._guarded, self._hand_off, name)
            elif target == self.identity and name not in self._claiming:
                if first:
                    looks.add(name)
                self._claim(node)
        if first and not looks:
            self._settled.set()
        # A node held here that left the file while it was busy (being replaced or
        # handed off) was skipped then: its removal is acted on now.
        assert self._group is not None
        for name in list(self.slots):
            gone = name not in self.config.nodes_by_name
            if gone and name not in self._retiring and name not in self._busy:
                self._group.start_soon(self._guarded, self._retire, name)

    def _paused(self) -> None:
        """Membership lapsed: this replica can no longer show it is alive, and a standby
        may take its nodes once the ownership timeout has passed. Their tenures refuse
        everything already, from the deadline on (same clock); the nodes keep their
        caches and watches, and resume once their Leases are written again after
        membership is back, unless someone took them meanwhile (then they stop, their
        Lease lost). Pausing, not stopping, keeps a short lapse (a slow API server, a
        lagging event loop) from turning into a restart of every node."""
        self._epoch_seen = -1  # resume (and count) only once
        log.warning(
            "membership lapsed: %d nodes refuse every write until it is back", len(self.slots)
        )
        self.metrics.fencing.labels(reason="membership").inc(len(self.slots))

    def _resumed(self) -> None:
        """Membership is valid in a new epoch: renew every node's Lease now, which is
        what proves each node ours again (``Tenure.renewed``)."""
        first = self._epoch_seen == 0
        self._epoch_seen = self.member.epoch
        if first:
            return
        log.info("membership back: renewing the Leases of %d nodes", len(self.slots))
        for slot in self.slots.values():
            if isinstance(slot.node, VirtualNode):
                slot.node.lease.renew_soon()

    def _claim(self, node: NodeConfig) -> None:
        """Claim ``node``'s Lease as soon as ``takeover.decide`` allows. The claimer asks
        the current plan each time: a node assigned here is taken at once when free; a
        free node assigned elsewhere (just handed off, say) only if its new owner leaves
        it unclaimed for the ownership timeout; one held by another is not our business
        unless assigned here."""
        assert self._group is not None
        scope = anyio.CancelScope()
        self._claiming[node.name] = scope
        self._group.start_soon(self._claim_then_serve, node, scope)

    async def _claim_then_serve(self, node: NodeConfig, scope: anyio.CancelScope) -> None:
        name = node.name

        def preferred() -> bool:
            return self.plan.get(name) == self.identity

        try:
            with scope, node_context(name, node.project):
                await self._claim_and_start(node, preferred)
        except Exception:
            # Placement claims it again at its next look.
            log.exception(
                "claiming the node failed unexpectedly",
                extra={"node": name, "project": node.project},
            )
        finally:
            if self._claiming.get(name) is scope:
                del self._claiming[name]
            self._replan()

    async def _claim_and_start(self, node: NodeConfig, preferred: Callable[[], bool]) -> None:
        name = node.name
        claimed = await self._claimer.claim(
            name, preferred=preferred, looked=functools.partial(self._looked, name)
        )
        if claimed is None:
            return
        wanted = self.config.nodes_by_name.get(name) if self.config else None
        if wanted is None or self._stopping or name in self.slots:
            # Taken for nothing (the file changed, or shutdown began meanwhile).
            await self._release(name, None)
            return
        if claimed.take.kind not in ("new", "ours"):
            self.metrics.takeovers.labels(kind=claimed.take.kind).inc()
        self._start_slot(wanted, claimed.claim)

    def _looked(self, name: str) -> None:
        if self._first_looks is not None and name in self._first_looks:
            self._first_looks.discard(name)
            if not self._first_looks:
                self._settled.set()

    async def _hand_off(self, name: str) -> None:
        """Stop the node (what was sent finishes, nothing new is sent), then release its
        Lease so that its new owner takes it at once; take it back if nobody has after
        the ownership timeout (``takeover.decide``: left unclaimed)."""
        self._busy.add(name)
        node = self.config.nodes_by_name.get(name) if self.config else None
        slot = self.slots.get(name)
        project = slot.project if slot is not None else node.project if node else ""
        try:
            with node_context(name, project):
                keeper = None
                if slot is not None:
                    keeper = await self._stop_slot(slot, "handed off to another replica")
                with anyio.CancelScope(shield=True):
                    if await self._release(name, keeper):
                        log.info("released the node's Lease for its new owner")
                self.metrics.handoffs.inc()
        finally:
            self._busy.discard(name)
        if node is not None and not self._stopping and name not in self._claiming:
            self._claim(node)
        self._replan()

    # --- shutdown: a handoff of everything ----------------------------------------------

    async def shutdown(self) -> None:
        """Leave the replica set: stop claiming, say so in the membership Lease (the
        others stop assigning nodes here and start waiting for this replica's), stop
        every node (mutations already sent get up to the shutdown grace; nothing new is
        sent from the moment membership ends), release every node's Lease so the others
        take it at once, and delete the membership Lease. Never deletes anything on
        SaladCloud."""
        if self._stopping:
            return
        self._stopping = True
        for scope in self._claiming.values():
            scope.cancel()
        held = list(self.slots.items())
        # One budget from here: the process is gone within the grace plus a few seconds
        # (cmd_run's watchdog, grace + 3 s, ends it otherwise), so the steps share it
        # instead of each taking its own: saying "leaving" 1 s, the nodes' mutations
        # the grace and their releases 1 s more, the membership Lease's deletion 0.5 s.
        with anyio.CancelScope(shield=True):
            await self.member.leave(within=1.0)
            log.info("leaving the replica set: handing off %d nodes", len(held))
            with anyio.move_on_after(self.settings.shutdown_grace_seconds + 1.0):
                async with anyio.create_task_group() as stopping:
                    for name, slot in held:
                        stopping.start_soon(self._stop_and_release, name, slot)
            await self.member.remove(within=0.5)

    async def _stop_and_release(self, name: str, slot: NodeSlot) -> None:
        with node_context(name, slot.project):
            keeper = await self._stop_slot(slot, "shutting down")
            if await self._release(name, keeper):
                self.metrics.handoffs.inc()

    async def _follow_config(self) -> None:
        assert self.config is not None
        seen = dict(self.config.source_hashes)
        failed_at: float | None = None
        while True:
            await anyio.sleep(self.settings.config_poll_interval_seconds)
            try:
                seen, failed_at = await self._check_config(seen, failed_at)
            except Exception:
                log.exception("following the projects file failed; trying again")

    async def _check_config(
        self, seen: dict[Path, str], failed_at: float | None
    ) -> tuple[dict[Path, str], float | None]:
        """Reload the projects file if it (or a key file) changed; return the new state:
        the hashes last acted on, and when the file was last found invalid.

        Reading and validating run on a worker thread: with a key file per node, a
        thousand nodes made every look a 190 ms stall of the event loop."""
        path = self.settings.config
        watched = self.config.watched_paths() if self.config else (path,)
        paths = {path, *watched, *seen}
        now = await anyio.to_thread.run_sync(lambda: {p: content_hash(p) for p in paths})
        retry = failed_at is not None and time.monotonic() - failed_at > _RETRY_INVALID_AFTER
        if now == seen and not retry:
            return seen, failed_at
        try:
            new = await anyio.to_thread.run_sync(
                functools.partial(load_projects, path, self._environ, allow_missing_keys=True)
            )
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
    here (the Kubernetes client from ``settings`` unless one is given); then it leaves
    the replica set (``Supervisor.shutdown``), its nodes stop and the pools close.
    ``options`` go to ``Supervisor``."""
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
                # Leaving hands every node to the other replicas, if there are any.
                with anyio.CancelScope(shield=True):
                    await supervisor.shutdown()
                group.cancel_scope.cancel()
