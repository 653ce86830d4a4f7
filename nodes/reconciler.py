"""The level-triggered heart of a node: make SaladCloud match the pods, and report back.

Desired state is the pod cache of ``PodWatch``; actual state is **one** list of the
project's container groups per interval (never a GET per pod per interval). Each
pass looks at every pod and decides at most one thing to do for it — create its
group, delete it, write its status, remove the pod — and hands that to a task of
its own, so one slow SaladCloud call never holds up another pod. A pod with work in
flight is skipped until its work finishes; then the pass runs again.

Decisions that keep workloads safe:

* A group missing from a list is never taken for gone on the list's word: a list
  can be incomplete (100 items at most) or glitch. A direct GET must answer 404
  before its pod is failed; before the first list nothing is decided at all.
* ``name_conflict`` on create means the name was used: by this pod's own group
  (adopt it: a crash between create and status must not make a second group), or
  by one that was deleted (names are never reusable: the pod fails).
* Orphaned groups are deleted only after a complete pod list, only if the group
  carries this node's owner marks, only once this run of the node has seen it for a
  minimum time, and only after a direct GET proves the owning pod is gone. Each
  deletion is an event and a log line.
* Cancellation (shutdown, restart) never starts a delete; a mutation already sent
  is allowed to finish for a bounded time, so its outcome is known.
* Any failed action backs its pod off (doubling, up to 5 minutes); no error can make
  a pod's work spin, and none escapes to stop the node.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskGroup

from . import pod_writes
from .events import EventRecorder
from .kube import KubeClient, KubeError, KubeNotFound
from .metrics import NodeMetrics
from .node_object import SaladHealth
from .node_reporter import NodeReporter
from .ownership import Owner, owner_of, with_owner
from .pod_watch import PodWatch
from .references import ReferenceReader
from .saladcloud.client import SaladClient
from .saladcloud.errors import (
    SaladAuthError,
    SaladError,
    SaladNameConflict,
    SaladNotFound,
    SaladProtocolError,
    SaladRateLimited,
    SaladUnavailable,
    project_not_found_message,
)
from .saladcloud.models import ContainerGroup, ContainerGroupInstance, GpuClass
from .settings import NodeSettings
from .status_patch import status_patch
from .translate import (
    Refusal,
    TranslationContext,
    container_group_for_pod,
    container_group_name,
    failed_status,
    pending_status,
    pod_status,
    required_objects,
    terminated_status,
    uid_suffix,
)

log = logging.getLogger(__name__)

JSON = dict[str, Any]

LIST_CAP = 100
"""SaladCloud lists return at most this many groups; a full page may hide some."""
_GPU_CLASSES_TTL = 600.0
_MAX_BACKOFF = 300.0


@dataclass
class _Pod:
    """What this run of the node knows about one pod beyond the pod object itself."""

    uid: str
    group: str
    created_at: float | None = None
    """Monotonic time our create (or adoption) of the group completed."""
    delete_sent_at: float | None = None
    next_attempt: float = 0.0
    attempts: int = 0
    waiting: tuple[str, str] | None = None
    """A waiting reason/message to show while the group cannot be created yet."""
    instances: list[ContainerGroupInstance] = field(default_factory=list)
    instances_at: float = 0.0
    fetched: ContainerGroup | None = None
    """The group as a direct GET (or our create) last returned it."""
    fetched_at: float = 0.0
    deletion_seen: bool = False


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _has_readiness_probe(pod: Mapping[str, Any]) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return bool(containers[0].get("readinessProbe"))


def _version(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("resourceVersion"))


def _has_run(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's status shows a container group instance (ours, earlier)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(str(s.get("containerID") or "").startswith("salad://") for s in statuses)


def _is_ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def health_from_error(error: SaladError, *, listing: bool = False) -> SaladHealth | None:
    """How a SaladCloud error changes the node's view of SaladCloud, if at all.

    A 404 or an unreadable answer means something only for the project's list: a
    missing group is normal, a missing project is not.
    """
    if listing and isinstance(error, SaladNotFound):
        return SaladHealth(False, "ProjectNotFound", project_not_found_message(error))
    if listing and isinstance(error, SaladProtocolError):
        return SaladHealth(
            False, "APIResponseInvalid", f"SaladCloud's answer is unreadable: {error}"
        )
    if isinstance(error, SaladAuthError):
        return SaladHealth(False, "APIKeyRejected", f"SaladCloud refused the API key: {error}")
    if isinstance(error, SaladUnavailable):
        return SaladHealth(False, "APIUnreachable", f"SaladCloud cannot be reached: {error}")
    if isinstance(error, SaladRateLimited):
        return SaladHealth(True, "RateLimited", "SaladCloud is rate limiting this API key")
    return None


class Reconciler:
    def __init__(
        self,
        *,
        settings: NodeSettings,
        kube: KubeClient,
        salad: SaladClient,
        pods: PodWatch,
        events: EventRecorder,
        reporter: NodeReporter,
        metrics: NodeMetrics | None = None,
        poll_interval: Callable[[], float] | None = None,
    ) -> None:
        self._settings = settings
        self._kube = kube
        self._salad = salad
        self._pods = pods
        self._events = events
        self._reporter = reporter
        self._metrics = metrics
        self._poll_interval = poll_interval or (lambda: settings.poll_interval)
        self._references = ReferenceReader(kube)
        self._tracked: dict[str, _Pod] = {}
        self._groups: dict[str, ContainerGroup] = {}
        self._listed_at: float | None = None
        """Monotonic time the last successful list was *sent*."""
        self._list_complete = True
        self._next_list = 0.0
        self._busy: set[str] = set()
        self._wake = anyio.Event()
        self._gpu_classes: tuple[float, list[GpuClass]] | None = None
        self._collector_checked: dict[str, float] = {}
        self._first_seen: dict[str, float] = {}
        """Monotonic time each listed group was first seen by this run of the node."""
        self._written: dict[str, tuple[str, JSON]] = {}
        """uid -> (resourceVersion the pod had, status we wrote): until the watch brings
        the pod past that version, the same status is not written again."""
        self._extra = {"node": settings.name, "project": settings.project}

    # --- signals -------------------------------------------------------------------

    def poke(self) -> None:
        """Something changed (pods, a finished action): run a pass soon."""
        self._wake.set()

    def _list_soon(self) -> None:
        """List again in a second (a deletion was sent: see it confirmed soon)."""
        self._next_list = min(self._next_list, time.monotonic() + 1.0)
        self._wake.set()

    # --- the loop --------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as actions:
            while True:
                timeout = max(0.0, self._next_list - time.monotonic())
                with anyio.move_on_after(timeout):
                    await self._wake.wait()
                self._wake = anyio.Event()
                # Let a burst of watch events land before looking at all of them.
                await anyio.sleep(0.05)
                if time.monotonic() >= self._next_list:
                    await self._list()
                if self._listed_at is None:
                    continue
                started = time.monotonic()
                self._pass(actions)
                if self._metrics is not None:
                    self._metrics.reconcile_duration.labels(node=self._settings.name).observe(
                        time.monotonic() - started
                    )

    async def _list(self) -> None:
        sent = time.monotonic()
        self._next_list = sent + self._poll_interval()
        try:
            groups = await self._salad.list_container_groups()
        except SaladError as error:
            health = health_from_error(error, listing=True)
            if health is not None:
                self._reporter.set_health(health)
            log.warning("listing container groups failed: %s", error, extra=self._extra)
            return
        self._reporter.set_health(SaladHealth(True, "APIReachable", "SaladCloud answers"))
        self._groups = {g.name: g for g in groups}
        self._first_seen = {g.name: self._first_seen.get(g.name, sent) for g in groups}
        self._list_complete = len(groups) < LIST_CAP
        self._listed_at = sent
        self._collector_checked = {
            name: at for name, at in self._collector_checked.items() if name in self._groups
        }
        if self._metrics is not None:
            counts: dict[str, int] = {}
            for group in groups:
                counts[group.current_state.status] = counts.get(group.current_state.status, 0) + 1
            gauge = self._metrics.container_groups
            for status in {*counts, "pending", "deploying", "running", "stopped", "failed"}:
                gauge.labels(node=self._settings.name, status=status).set(counts.get(status, 0))

    def _saw_error(self, error: SaladError) -> None:
        health = health_from_error(error)
        if health is not None:
            self._reporter.set_health(health)

    def _pass(self, actions: TaskGroup) -> None:
        now = time.monotonic()
        pods = self._pods.pods
        phases: dict[str, int] = {}
        live: dict[str, str] = {}
        for key, pod in pods.items():
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid"))
            phases[_phase(pod)] = phases.get(_phase(pod), 0) + 1
            tracked = self._tracked.get(key)
            if tracked is None or tracked.uid != uid:
                if tracked is not None:
                    self._forget(actions, key, tracked)
                tracked = self._tracked[key] = _Pod(
                    uid=uid,
                    group=container_group_name(
                        str(meta.get("namespace")), str(meta.get("name")), uid
                    ),
                )
            live[tracked.group] = key
            if _deleting(pod) and not tracked.deletion_seen:
                # A deletion must not wait out the backoff of an earlier create.
                tracked.deletion_seen = True
                tracked.next_attempt, tracked.attempts = 0.0, 0
            if uid in self._busy or now < tracked.next_attempt:
                continue
            work = self._decide(pod, tracked, now)
            if work is not None:
                self._spawn(actions, uid, work, tracked)
        for key in [k for k in self._tracked if k not in pods]:
            self._forget(actions, key, self._tracked.pop(key))
        if self._metrics is not None:
            for phase in {*phases, "Pending", "Running", "Succeeded", "Failed"}:
                self._metrics.pods.labels(node=self._settings.name, phase=phase).set(
                    phases.get(phase, 0)
                )
        self._collect_orphans(actions, live, now)

    def _spawn(
        self,
        actions: TaskGroup,
        uid: str,
        work: Callable[[], Awaitable[None]],
        tracked: _Pod | None = None,
    ) -> None:
        """Run ``work`` in a task of its own; whatever it raises stays here."""
        self._busy.add(uid)

        async def run() -> None:
            try:
                await work()
            except KubeError as error:
                self._back_off(tracked)
                log.warning("kubernetes call failed: %s", error, extra=self._extra)
            except SaladError as error:
                self._back_off(tracked)
                self._saw_error(error)
                log.warning("SaladCloud call failed: %s", error, extra=self._extra)
            except Exception:
                # A pod or an answer nobody foresaw: the pod waits, the node goes on.
                self._back_off(tracked)
                log.exception("unexpected error handling a pod", extra=self._extra)
            finally:
                self._busy.discard(uid)
                self.poke()

        actions.start_soon(run)

    # --- per pod -----------------------------------------------------------------------

    def _group_state(self, tracked: _Pod) -> ContainerGroup | None:
        """The group as last seen: in the list, or by a GET (or our create) newer than it."""
        listed = self._groups.get(tracked.group)
        if listed is not None:
            return listed
        if tracked.fetched is not None and tracked.fetched_at >= (self._listed_at or 0.0):
            return tracked.fetched
        return None

    def _unlisted(self, tracked: _Pod) -> bool:
        """Our group is missing from a list sent after we made it: a direct GET must say
        whether it is gone or only not listed (a full list, a glitch)."""
        return (
            tracked.created_at is not None
            and self._listed_at is not None
            and self._listed_at > tracked.created_at
            and self._group_state(tracked) is None
        )

    def _decide(self, pod: JSON, tracked: _Pod, now: float) -> Callable[[], Awaitable[None]] | None:
        group = self._group_state(tracked)
        if _deleting(pod):
            return self._decide_deletion(pod, tracked, group, now)
        if _phase(pod) in ("Succeeded", "Failed"):
            if group is not None and tracked.delete_sent_at is None:
                return lambda: self._delete_group(pod, tracked, "pod finished")
            return None
        if group is None:
            if self._unlisted(tracked):
                return lambda: self._confirm(pod, tracked)
            if tracked.created_at is not None:
                return self._status_work(pod, tracked, None)
            return lambda: self._create(pod, tracked)
        if tracked.created_at is None:
            tracked.created_at = now
        if self._wants_instances(pod, tracked, group, now):
            return lambda: self._refresh_instances(pod, tracked, group)
        return self._status_work(pod, tracked, group)

    def _status_work(
        self, pod: JSON, tracked: _Pod, group: ContainerGroup | None
    ) -> Callable[[], Awaitable[None]] | None:
        now, node_ip = datetime.now(UTC), self._settings.node_ip
        if group is None and tracked.waiting is not None:
            reason, message = tracked.waiting
            status = pending_status(pod, reason, message, now=now, node_ip=node_ip)
        else:
            status = pod_status(pod, group, tracked.instances, now=now, node_ip=node_ip)
        if self._written.get(tracked.uid) == (_version(pod), status):
            return None  # written already; the watch has not brought it back yet
        if status_patch(pod.get("status") or {}, status) is None:
            return None
        return lambda: self._write_status(pod, status)

    def _wants_instances(self, pod: JSON, tracked: _Pod, group: ContainerGroup, now: float) -> bool:
        """Instances cost a call per group, so they are read only where the list cannot
        tell: readiness of a running group whose pod has a readiness probe."""
        if group.current_state.status != "running" or not _has_readiness_probe(pod):
            return False
        age = now - tracked.instances_at
        interval = self._poll_interval()
        return age >= (interval if not _is_ready(pod) else 5 * interval)

    def _decide_deletion(
        self, pod: JSON, tracked: _Pod, group: ContainerGroup | None, now: float
    ) -> Callable[[], Awaitable[None]] | None:
        # Delete unless the group provably never existed: a 404 costs one call, a
        # group left running costs money and shows up as an orphan ten minutes later.
        may_exist = (
            group is not None
            or tracked.created_at is not None
            or not self._list_complete
            or _has_run(pod)
        )
        if tracked.delete_sent_at is None:
            if may_exist:
                return lambda: self._delete_group(pod, tracked, "pod deleted")
            return lambda: self._finish(pod)
        listed_after = self._listed_at is not None and self._listed_at > tracked.delete_sent_at
        gone = self._groups.get(tracked.group) is None and listed_after and self._list_complete
        overdue = now - tracked.delete_sent_at > self._settings.delete_confirm_timeout
        if gone or overdue:
            return lambda: self._finish(pod)
        return None

    # --- actions -----------------------------------------------------------------------

    async def _write_status(self, pod: JSON, status: JSON) -> None:
        """Patch the status if it changed; a phase change is also told as an event."""
        updated = await pod_writes.write_status(self._kube, pod, status)
        if updated is None:
            return
        self._written[str(pod["metadata"]["uid"])] = (_version(pod), status)
        before = _phase(pod)
        after = str(status.get("phase") or before)
        if before == after:
            return
        if after == "Running":
            await self._events.on_pod(pod, "Normal", "Started", "container group is running")
        elif after == "Failed":
            await self._events.on_pod(
                pod,
                "Warning",
                str(status.get("reason") or "Failed"),
                str(status.get("message") or ""),
            )
        elif after == "Succeeded":
            await self._events.on_pod(pod, "Normal", "Completed", "container group finished")

    async def _fail(self, pod: JSON, reason: str, message: str) -> None:
        """Fail the pod for ``reason``; the phase change brings its Warning event."""
        if self._metrics is not None:
            self._metrics.pod_refusals.labels(node=self._settings.name, reason=reason).inc()
        status = failed_status(pod, reason, message, datetime.now(UTC))
        await self._write_status(pod, status)

    async def _finish(self, pod: JSON) -> None:
        """The group is gone: make the pod terminal (Jobs count on it), then remove it."""
        if _phase(pod) not in ("Succeeded", "Failed"):
            await pod_writes.write_status(
                self._kube, pod, terminated_status(pod, datetime.now(UTC))
            )
        await pod_writes.remove(self._kube, pod)

    async def _send_delete(self, name: str) -> bool | None:
        """Delete a group, letting a call already sent finish for the mutation grace even
        when the node is being stopped. True: deleted; False: it was not there; None:
        the outcome is unknown (the grace ran out)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._settings.mutation_grace):
            try:
                await self._salad.delete_container_group(name)
            except SaladNotFound:
                self._groups.pop(name, None)
                return False
            self._groups.pop(name, None)
            return True
        return None

    async def _delete_group(self, pod: JSON | None, tracked: _Pod, why: str) -> None:
        if await self._send_delete(tracked.group) is None:
            return
        tracked.delete_sent_at = time.monotonic()
        if pod is not None:
            await self._events.on_pod(
                pod,
                "Normal",
                "ContainerGroupDeleted",
                f"deleted container group {tracked.group} ({why})",
            )
        log.info("deleted container group %s (%s)", tracked.group, why, extra=self._extra)
        self._list_soon()

    def _forget(self, actions: TaskGroup, key: str, tracked: _Pod) -> None:
        """A pod left the cache (its deletion was observed, or its name has a new pod)."""
        self._written.pop(tracked.uid, None)
        may_exist = tracked.group in self._groups or tracked.created_at is not None
        if may_exist and tracked.delete_sent_at is None and tracked.uid not in self._busy:
            self._spawn(
                actions,
                tracked.uid,
                lambda: self._delete_group(None, tracked, f"pod {key} is gone"),
            )

    async def _context(self, pod: JSON) -> TranslationContext:
        namespace = str((pod.get("metadata") or {}).get("namespace"))
        needed = required_objects(pod)
        secrets = await self._references.read("secrets", namespace, needed.secret_names)
        config_maps = await self._references.read("configmaps", namespace, needed.config_map_names)
        return TranslationContext(
            node_name=self._settings.name,
            node_ip=self._settings.node_ip,
            organization=self._settings.organization,
            project=self._settings.project,
            secrets=secrets,
            config_maps=config_maps,
            gpu_classes=await self._gpu_class_list(pod),
            default_country_codes=self._settings.default_country_codes,
            default_gpu_classes=self._settings.default_gpu_classes,
            default_priority=self._settings.default_priority,
            kubernetes_version=self._settings.cluster.version,
        )

    async def _gpu_class_list(self, pod: JSON) -> list[GpuClass]:
        wants = bool(self._settings.default_gpu_classes) or any(
            k.startswith("salad.com/gpu")
            for k in ((pod.get("metadata") or {}).get("annotations") or {})
        )
        if not wants:
            return []
        now = time.monotonic()
        if self._gpu_classes is None or now - self._gpu_classes[0] > _GPU_CLASSES_TTL:
            self._gpu_classes = (now, await self._salad.list_gpu_classes())
        return self._gpu_classes[1]

    async def _create(self, pod: JSON, tracked: _Pod) -> None:
        context = await self._context(pod)
        body = container_group_for_pod(pod, context)
        if isinstance(body, Refusal):
            await self._refused(pod, tracked, body)
            return
        body = with_owner(body, pod, self._settings.name, self._settings.cluster.id or "unknown")
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self._settings.mutation_grace):
                group = await self._salad.create_container_group(body)
                tracked.created_at = time.monotonic()
                tracked.fetched, tracked.fetched_at = group, tracked.created_at
        except SaladNameConflict:
            await self._adopt_or_fail(pod, tracked)
            return
        except SaladError as error:
            await self._create_failed(pod, tracked, error)
            return
        if tracked.created_at is None:
            return
        tracked.waiting = None
        tracked.attempts = 0
        self._reporter.set_health(SaladHealth(True, "APIReachable", "SaladCloud answers"))
        await self._events.on_pod(
            pod,
            "Normal",
            "ContainerGroupCreated",
            f"created container group {tracked.group} in project "
            f"{self._settings.organization}/{self._settings.project}",
        )

    async def _refused(self, pod: JSON, tracked: _Pod, refusal: Refusal) -> None:
        if refusal.permanent:
            await self._fail(pod, refusal.reason, refusal.message)
            return
        self._back_off(tracked)
        if tracked.waiting != (refusal.reason, refusal.message):
            tracked.waiting = (refusal.reason, refusal.message)
            await self._events.on_pod(pod, "Warning", refusal.reason, refusal.message)

    def _back_off(self, tracked: _Pod | None) -> None:
        """Wait before this pod's next action: 2 s, doubling, at most 5 minutes."""
        if tracked is None:
            return
        tracked.attempts += 1
        delay = min(_MAX_BACKOFF, 2.0 ** min(tracked.attempts, 9))
        tracked.next_attempt = time.monotonic() + delay

    async def _lookup(self, pod: JSON, tracked: _Pod, *, after: str) -> ContainerGroup | None:
        """Our group, asked for by name; None after failing the pod because it is gone.

        ``after`` says what made us ask: the 404 means something different after a
        ``name_conflict`` (the name was ours and cannot be used again) than after a list.
        """
        try:
            return await self._salad.get_container_group(tracked.group)
        except SaladNotFound:
            message = f"container group {tracked.group} was deleted outside Kubernetes"
            if after == "name_conflict":
                message += " (SaladCloud never reuses a name, so it cannot be created again)"
            await self._fail(pod, "ContainerGroupDeleted", message)
            return None

    async def _adopt_or_fail(self, pod: JSON, tracked: _Pod) -> None:
        group = await self._lookup(pod, tracked, after="name_conflict")
        if group is None:
            return
        owner = owner_of(group)
        if owner is not None and owner.uid != tracked.uid:
            await self._fail(
                pod,
                "ContainerGroupNameTaken",
                f"container group name {tracked.group} belongs to pod "
                f"{owner.namespace}/{owner.name} ({owner.uid})",
            )
            return
        tracked.created_at = time.monotonic()
        tracked.fetched, tracked.fetched_at = group, tracked.created_at
        log.info("adopted existing container group %s", group.name, extra=self._extra)

    async def _create_failed(self, pod: JSON, tracked: _Pod, error: SaladError) -> None:
        self._saw_error(error)
        if error.permanent and not isinstance(error, SaladAuthError):
            await self._fail(
                pod, "ContainerGroupRejected", f"SaladCloud refused the container group: {error}"
            )
            return
        self._back_off(tracked)
        message = f"SaladCloud create failed, will retry: {error}"
        tracked.waiting = ("ContainerCreating", message)
        if tracked.attempts in (1, 4, 8):
            await self._events.on_pod(pod, "Warning", "ContainerGroupCreateFailed", message)

    async def _confirm(self, pod: JSON, tracked: _Pod) -> None:
        """The list did not show our group: ask for it by name before believing it gone."""
        group = await self._lookup(pod, tracked, after="list")
        if group is None:
            return
        tracked.fetched, tracked.fetched_at = group, time.monotonic()

    async def _refresh_instances(self, pod: JSON, tracked: _Pod, group: ContainerGroup) -> None:
        tracked.instances_at = time.monotonic()
        try:
            tracked.instances = await self._salad.list_instances(group.name)
        except SaladNotFound:
            tracked.instances = []
        work = self._status_work(pod, tracked, group)
        if work is not None:
            await work()

    # --- orphans -----------------------------------------------------------------------

    def _collect_orphans(self, actions: TaskGroup, live: Mapping[str, str], now: float) -> None:
        if not (self._pods.synced and self._pods.lists > 0 and self._listed_at is not None):
            return
        if not self._settings.cluster.id:
            return
        for name, group in list(self._groups.items()):
            if name in live or uid_suffix(name) is None:
                continue
            owner = owner_of(group)
            if owner is None or owner.node != self._settings.name:
                continue
            if owner.cluster != self._settings.cluster.id:
                continue
            # Age as this node has watched it, not by the server's clock: no skew between
            # the two can make a young group look old, and a restart starts the wait over.
            if now - self._first_seen.get(name, now) < self._settings.orphan_min_age:
                continue
            if now - self._collector_checked.get(name, 0.0) < self._poll_interval():
                continue
            self._collector_checked[name] = now
            if owner.uid in self._busy:
                continue
            self._spawn(actions, owner.uid, functools.partial(self._collect, group, owner))

    async def _collect(self, group: ContainerGroup, owner: Owner) -> None:
        try:
            pod = await self._kube.get(f"/api/v1/namespaces/{owner.namespace}/pods/{owner.name}")
        except KubeNotFound:
            pod = None
        if pod is not None and pod["metadata"]["uid"] == owner.uid:
            return
        reason = (
            f"container group {group.name} is orphaned: pod {owner.namespace}/{owner.name} "
            f"({owner.uid}) no longer exists"
        )
        if not await self._send_delete(group.name):
            return
        log.warning("deleted orphaned %s", reason, extra=self._extra)
        if self._metrics is not None:
            self._metrics.orphans_deleted.labels(node=self._settings.name).inc()
        await self._events.on_node(
            self._reporter.uid, "Warning", "OrphanedContainerGroupDeleted", reason
        )
