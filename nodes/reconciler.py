"""The level-triggered heart of a node: make SaladCloud match the pods, and report back.

Desired state is the pod cache of ``PodWatch``; actual state is **one** list of the
project's container groups per interval (never a GET per pod per interval). The list
runs in a task of its own, and each pass works on the last complete list: a list
waiting for its rate-limit turn never holds up a create or a delete ("mutations
before polls" holds for the node's own work too).

Each pass asks ``pod_decisions.decide`` what to do for every pod: an action value,
which ``_execute`` carries out in a task of its own, so one slow SaladCloud call
never holds up another pod. ``_execute`` is the one place that acts. A pod with work
in flight is skipped until its work finishes; then the pass runs again.

Decisions that keep workloads safe (see also ``pod_decisions``):

* A deletion the node owes (a pod that left without waiting for its group) is a debt
  (``owed_deletions``), retried with backoff until SaladCloud confirms it, and kept on
  the Node object so that a restart or a takeover pays it too.
* ``name_conflict`` on create means the name was used: by this pod's own group
  (adopt it: a crash between create and status must not make a second group), or
  by one that was deleted (names are never reusable: the pod fails).
* Orphaned groups are deleted only after a complete pod list, only if the group
  carries this node's owner marks, only once this run of the node has seen it for a
  minimum time, and only after a direct GET proves the owning pod is gone. Each
  deletion is an event and a log line.
* A mutation already sent is allowed to finish for ``mutation_grace`` once the node
  is being stopped, so its outcome is known; before that it takes as long as it
  takes (a rate-limit wait included), and it is never abandoned and sent again.
* Any failed action backs its pod off (doubling, up to 5 minutes); no error can make
  a pod's work spin, and none escapes to stop the node.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import anyio
from anyio.abc import TaskGroup

from . import pod_writes
from .events import EventRecorder
from .jitter import jittered
from .kube import KubeClient, KubeError, KubeNotFound, api_path
from .metrics import NodeMetrics
from .node_object import SaladHealth
from .node_reporter import NodeReporter
from .owed_deletions import ANNOTATION as OWED_ANNOTATION
from .owed_deletions import RESEND_AFTER, Debt, OwedDeletions
from .ownership import Owner, owner_of, with_owner
from .pod_decisions import (
    Action,
    Circumstances,
    Confirm,
    Create,
    DeleteGroup,
    Finish,
    Listing,
    PodTrack,
    ReadInstances,
    WriteStatus,
    adopted_listed,
    changed_since_refused,
    decide,
    deleting,
    group_state,
    is_ours,
    phase,
    pod_digest,
    resource_version,
    status_action,
)
from .pod_translation import PodTranslator
from .pod_watch import PodWatch
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
from .saladcloud.models import ContainerGroup
from .saladcloud.ratelimit import Priority
from .settings import CORDONED_BY, NodeSettings
from .tenure import NotOwned
from .translate import (
    Refusal,
    container_group_name,
    failed_status,
    pending_status,
    terminated_status,
    uid_suffix,
)
from .translate.sensitive import scrub

log = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")

LIST_CAP = 100
"""SaladCloud lists return at most this many groups; a full page may hide some."""
INSTANCE_READS_IN_FLIGHT = 5
"""Instance reads a node may have waiting or in flight: a node with a hundred unready
pods reads a few at a time (at the key's lowest priority) instead of queueing a hundred."""
_MAX_BACKOFF = 300.0
_MAX_WAITING_BACKOFF = 30.0
"""A pod waiting for a Secret or ConfigMap is tried again at least this often, as the
kubelet retries ``CreateContainerConfigError``: nothing tells the node it appeared."""
_NOT_OWNED_RECHECK = 1.0
"""How soon a node that is not owned at the moment looks again."""
_DEBT_WRITE_PAUSE = 1.0


def health_from_error(
    error: SaladError, *, listing: bool = False, said: str | None = None
) -> SaladHealth | None:
    """How a SaladCloud error changes the node's view of SaladCloud, if at all.

    A 404 or an unreadable answer means something only for the project's list: a
    missing group is normal, a missing project is not. ``said`` is the error as it may
    be shown (Secret values scrubbed), when it differs from ``str(error)``.
    """
    said = str(error) if said is None else said
    if listing and isinstance(error, SaladNotFound):
        return SaladHealth(False, "ProjectNotFound", project_not_found_message(error))
    if listing and isinstance(error, SaladProtocolError):
        return SaladHealth(
            False, "APIResponseInvalid", f"SaladCloud's answer is unreadable: {error}"
        )
    if isinstance(error, SaladAuthError):
        return SaladHealth(False, "APIKeyRejected", f"SaladCloud refused the API key: {said}")
    if isinstance(error, SaladUnavailable):
        return SaladHealth(False, "APIUnreachable", f"SaladCloud cannot be reached: {said}")
    if isinstance(error, SaladRateLimited):
        return SaladHealth(True, "RateLimited", "SaladCloud is rate limiting this API key")
    return None


class MutationAbandoned(Exception):
    """A mutation outlived the grace of a stopping node (and so its outcome is unknown)."""


def _back_off(track: PodTrack | Debt, limit: float = _MAX_BACKOFF) -> None:
    """Wait before the next action: 2 s, doubling, at most ``limit``."""
    track.attempts += 1
    delay = min(limit, 2.0 ** min(track.attempts, 9))
    track.next_attempt = time.monotonic() + delay


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
        owned: Callable[[], bool] | None = None,
    ) -> None:
        self._settings = settings
        self._kube = kube
        self._salad = salad
        self._pods = pods
        self._events = events
        self._reporter = reporter
        self._metrics = metrics
        self._poll_interval = poll_interval or (lambda: settings.poll_interval)
        self._owned = owned or (lambda: True)
        self._translator = PodTranslator(settings, kube, salad)
        self._tracked: dict[str, PodTrack] = {}
        self._listing: Listing | None = None
        self._next_list = 0.0
        self._list_wake = anyio.Event()
        self._next_pass = 0.0
        self._busy: set[str] = set()
        self._reads: set[str] = set()
        self._wake = anyio.Event()
        self._in_flight: set[anyio.CancelScope] = set()
        """Mutations being sent: given ``mutation_grace`` to finish once the node stops."""
        self._stopping = False
        self.owed = OwedDeletions()
        self._debts_changed = anyio.Event()
        self._collector_checked: dict[str, float] = {}
        self._first_seen: dict[str, float] = {}
        """Monotonic time each listed group was first seen by this run of the node."""
        self._extra = {"node": settings.name, "project": settings.project}

    # --- signals -------------------------------------------------------------------

    def poke(self) -> None:
        """Something changed (pods, a finished action): run a pass soon."""
        self._wake.set()

    def _list_soon(self) -> None:
        """List again in a second (a deletion was sent: see it confirmed soon)."""
        self._next_list = min(self._next_list, time.monotonic() + 1.0)
        self._list_wake.set()

    def _debts_moved(self) -> None:
        self._debts_changed.set()

    # --- the loops -------------------------------------------------------------------

    async def run(self) -> None:
        # Debts written on the Node by an earlier run (or another replica) are ours now.
        node_meta = self._reporter.server_node().get("metadata") or {}
        self.owed.restore(node_meta.get("annotations") or {})
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._list_loop)
            tasks.start_soon(self._write_debts)
            try:
                await self._pass_loop(tasks)
            finally:
                self._bound_in_flight()

    def _bound_in_flight(self) -> None:
        """The node is being stopped: what was sent gets ``mutation_grace`` to finish."""
        self._stopping = True
        deadline = anyio.current_time() + self._settings.mutation_grace
        for scope in self._in_flight:
            scope.deadline = min(scope.deadline, deadline)

    async def _list_loop(self) -> None:
        while True:
            with anyio.move_on_after(max(0.0, self._next_list - time.monotonic())):
                await self._list_wake.wait()
            self._list_wake = anyio.Event()
            if time.monotonic() < self._next_list:
                continue
            await self._list()
            self.poke()

    async def _pass_loop(self, actions: TaskGroup) -> None:
        while True:
            with anyio.move_on_after(max(0.0, self._next_pass - time.monotonic())):
                await self._wake.wait()
            self._wake = anyio.Event()
            # Let a burst of watch events land before looking at all of them.
            await anyio.sleep(0.05)
            listing = self._listing
            if listing is None:
                self._next_pass = time.monotonic() + self._poll_interval()
                continue
            if not self._owned():
                # Paused (membership lapsed, the Lease not renewed in time) or being
                # handed off: every write would be refused. Deciding nothing keeps the
                # pods' backoffs and events as they were, for when it is ours again.
                self._next_pass = time.monotonic() + _NOT_OWNED_RECHECK
                continue
            started = time.monotonic()
            self._pass(actions, listing)
            if self._metrics is not None:
                self._metrics.reconcile_duration.observe(time.monotonic() - started)

    async def _list(self) -> None:
        sent = time.monotonic()
        self._next_list = sent + jittered(self._poll_interval())
        # Until its first list the node decides nothing, its creates and deletes
        # included: that list ranks as they do, or another node's burst of creates on
        # the key would hold this node's first pod back until the burst was over.
        priority = Priority.POLL if self._listing is not None else Priority.MUTATION
        try:
            groups = await self._salad.list_container_groups(priority=priority)
        except SaladError as error:
            health = health_from_error(error, listing=True)
            if health is not None:
                self._reporter.set_health(health)
            log.warning("listing container groups failed: %s", error, extra=self._extra)
            return
        self._reporter.set_health(SaladHealth(True, "APIReachable", "SaladCloud answers"))
        by_name = {g.name: g for g in groups}
        self._listing = Listing(by_name, sent_at=sent, complete=len(groups) < LIST_CAP)
        self._first_seen = {name: self._first_seen.get(name, sent) for name in by_name}
        self._collector_checked = {
            name: at for name, at in self._collector_checked.items() if name in by_name
        }
        if self._metrics is not None:
            counts: dict[str, int] = {}
            for group in groups:
                counts[group.current_state.status] = counts.get(group.current_state.status, 0) + 1
            gauge = self._metrics.container_groups
            for status in {*counts, "pending", "deploying", "running", "stopped", "failed"}:
                gauge.labels(node=self._settings.name, status=status).set(counts.get(status, 0))

    async def _write_debts(self) -> None:
        """Keep the Node's annotation in step with the debts, a write at most a second."""
        while True:
            await self._debts_changed.wait()
            self._debts_changed = anyio.Event()
            if not self.owed.dirty:
                continue
            self.owed.dirty = False
            try:
                await self._reporter.annotate(OWED_ANNOTATION, self.owed.annotation())
            except KubeError as error:
                if not isinstance(error, NotOwned):
                    log.warning("recording owed deletions failed: %s", error, extra=self._extra)
                self.owed.dirty = True
                self._debts_changed.set()
            await anyio.sleep(_DEBT_WRITE_PAUSE)

    def _saw_error(self, error: SaladError, said: str | None = None) -> None:
        health = health_from_error(error, said=said)
        if health is not None:
            self._reporter.set_health(health)

    # --- one pass ----------------------------------------------------------------------

    def _circumstances(self) -> Circumstances:
        return Circumstances(
            now=time.monotonic(),
            wall=datetime.now(UTC),
            node_ip=self._settings.node_ip,
            poll_interval=self._poll_interval(),
            delete_confirm_timeout=self._settings.delete_confirm_timeout,
        )

    def _pass(self, actions: TaskGroup, listing: Listing) -> None:
        when = self._circumstances()
        now = when.now
        self._next_pass = now + when.poll_interval
        pods = self._pods.pods
        phases: dict[str, int] = {}
        live: dict[str, str] = {}
        for key, pod in pods.items():
            phases[phase(pod)] = phases.get(phase(pod), 0) + 1
            track = self._track(key, pod, listing, now)
            live[track.group] = key
            if track.uid in self._busy:
                continue
            if now < track.next_attempt:
                self._next_pass = min(self._next_pass, track.next_attempt)
                continue
            action = decide(pod, track, listing, when)
            if isinstance(action, ReadInstances):
                self._read_soon(actions, pod, track, action, now)
            elif action is not None:
                self._spawn(
                    actions,
                    track.uid,
                    functools.partial(self._execute, pod, track, action),
                    functools.partial(_back_off, track),
                    track,
                )
        for key in [k for k in self._tracked if k not in pods]:
            self._forget(key, self._tracked.pop(key), listing)
        if self._metrics is not None:
            for name in {*phases, "Pending", "Running", "Succeeded", "Failed"}:
                self._metrics.pods.labels(node=self._settings.name, phase=name).set(
                    phases.get(name, 0)
                )
        self._pay_debts(actions, listing, now)
        self._collect_orphans(actions, listing, live, now)

    def _track(self, key: str, pod: JSON, listing: Listing, now: float) -> PodTrack:
        """The pod's track, new for a new pod (its predecessor under the name forgotten),
        brought up to date with what the pod shows."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        track = self._tracked.get(key)
        if track is None or track.uid != uid:
            if track is not None:
                self._forget(key, track, listing)
            group = container_group_name(str(meta.get("namespace")), str(meta.get("name")), uid)
            track = self._tracked[key] = PodTrack(uid=uid, group=group)
        adopted_listed(track, listing, now)
        if changed_since_refused(pod, track):
            track.judged, track.next_attempt, track.attempts = None, 0.0, 0
        if deleting(pod) and not track.deletion_seen:
            # A deletion must not wait out the backoff of an earlier create.
            track.deletion_seen = True
            track.next_attempt, track.attempts = 0.0, 0
        return track

    def _read_soon(
        self, actions: TaskGroup, pod: JSON, track: PodTrack, action: ReadInstances, now: float
    ) -> None:
        """Start an instance read, unless the node has enough of them in flight. A read
        waits at the key's lowest priority, so it does not make its pod busy: a
        deletion of the pod must not wait behind it."""
        key = f"instances/{track.uid}"
        if key in self._busy or len(self._reads) >= INSTANCE_READS_IN_FLIGHT:
            self._next_pass = min(self._next_pass, now + 1.0)
            return
        track.instances_at = now
        self._reads.add(key)

        async def read() -> None:
            try:
                await self._execute(pod, track, action)
            finally:
                self._reads.discard(key)

        self._spawn(actions, key, read, functools.partial(_back_off, track), track)

    def _spawn(
        self,
        actions: TaskGroup,
        key: str,
        work: Callable[[], Awaitable[None]],
        back_off: Callable[[], None] | None = None,
        waiting: PodTrack | Debt | None = None,
    ) -> None:
        """Run ``work`` in a task of its own; whatever it raises stays here. ``back_off``
        is called when it fails; ``waiting`` is what to try again soon if ownership
        was lost meanwhile."""
        self._busy.add(key)

        async def run() -> None:
            try:
                await work()
            except NotOwned as error:
                # Never sent, and not this pod's failure: no backoff grows. The passes
                # wait for ownership to come back (or for the node to stop).
                if waiting is not None:
                    waiting.next_attempt = time.monotonic() + _NOT_OWNED_RECHECK
                log.debug("not sent: %s", error, extra=self._extra)
            except KubeError as error:
                if back_off is not None:
                    back_off()
                log.warning("kubernetes call failed: %s", error, extra=self._extra)
            except SaladError as error:
                if back_off is not None:
                    back_off()
                self._saw_error(error)
                log.warning("SaladCloud call failed: %s", error, extra=self._extra)
            except Exception:
                # A pod or an answer nobody foresaw: the pod waits, the node goes on.
                if back_off is not None:
                    back_off()
                log.exception("unexpected error handling a pod", extra=self._extra)
            finally:
                self._busy.discard(key)
                self.poke()

        actions.start_soon(run)

    def _forget(self, key: str, track: PodTrack, listing: Listing) -> None:
        """A pod left the cache (its deletion was observed, or its name has a new pod).

        If its group may still exist, deleting it is a debt from now on: nothing else
        would remind the node of it.
        """
        listed = group_state(track, listing) is not None
        confirmed_gone = (
            track.delete_sent_at is not None
            and listing.complete
            and listing.sent_at > track.delete_sent_at
            and track.group not in listing.groups
        )
        # A create may be in flight (the pod is busy), or one whose answer was lost may
        # have made it: owe its group too; a 404 is cheap.
        may_exist = (
            listed or track.created_at is not None or track.create_sent or track.uid in self._busy
        )
        if may_exist and not confirmed_gone:
            self.owed.owe(track.group, track.uid, key)
            self._debts_moved()

    # --- actions -----------------------------------------------------------------------

    async def _execute(self, pod: JSON, track: PodTrack, action: Action) -> None:
        """Carry out one decision: the only place a pod's work reaches SaladCloud or the
        pod object."""
        match action:
            case Create():
                await self._create(pod, track)
            case Confirm():
                await self._confirm(pod, track)
            case ReadInstances(group):
                await self._read_instances(pod, track, group)
            case WriteStatus(status):
                await self._write_status(pod, track, status)
            case DeleteGroup(why):
                await self._delete_group(pod, track, why)
            case Finish():
                await self._finish(pod)

    async def _mutate(self, send: Callable[[], Awaitable[T]]) -> T:
        """Send a SaladCloud mutation. Once started it is not cancelled by the node
        stopping; from then on it gets ``mutation_grace`` to finish, so its outcome is
        known. A node already stopping starts none."""
        # A cancellation delivered in the same step as whatever led here must win: past
        # this point the call is shielded and goes out.
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._stopping:
            await anyio.lowlevel.checkpoint()
        with anyio.CancelScope(shield=True) as scope:
            self._in_flight.add(scope)
            try:
                return await send()
            finally:
                self._in_flight.discard(scope)
        # Reached only when the grace ran out, which only a stopping node sets: its own
        # cancellation takes over here. The outcome of the call stays unknown.
        await anyio.lowlevel.checkpoint()
        raise MutationAbandoned

    async def _write_status(self, pod: JSON, track: PodTrack | None, status: JSON) -> None:
        """Patch the status if it changed; a phase change is also told as an event."""
        updated = await pod_writes.write_status(self._kube, pod, status)
        if updated is None:
            return
        if track is not None:
            track.written = (resource_version(pod), status)
        before = phase(pod)
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

    def _count_refusal(self, track: PodTrack, reason: str) -> None:
        """``pod_refusals`` counts pods, not retries: once per pod and reason."""
        if self._metrics is not None and (track.waiting or ("",))[0] != reason:
            self._metrics.pod_refusals.labels(node=self._settings.name, reason=reason).inc()

    async def _fail(self, pod: JSON, track: PodTrack, reason: str, message: str) -> None:
        """Fail the pod for ``reason`` (its group is lost for good); the phase change
        brings its Warning event."""
        self._count_refusal(track, reason)
        track.waiting = (reason, message)
        await self._write_status(pod, track, failed_status(pod, reason, message, datetime.now(UTC)))

    async def _finish(self, pod: JSON) -> None:
        """The group is gone: make the pod terminal (Jobs count on it), then remove it."""
        if phase(pod) not in ("Succeeded", "Failed"):
            await pod_writes.write_status(
                self._kube, pod, terminated_status(pod, datetime.now(UTC))
            )
        await pod_writes.remove(self._kube, pod)

    async def _delete_group(self, pod: JSON, track: PodTrack, why: str) -> None:
        listing = self._listing
        if listing is None or group_state(track, listing) is None:
            # Not in the list as ours (a full list hides some): ask before deleting, so
            # that a group of this name owned by another pod is never deleted.
            try:
                found = await self._salad.get_container_group(
                    track.group, priority=Priority.MUTATION
                )
            except SaladNotFound:
                found = None
            if found is not None and not is_ours(found, track):
                log.warning(
                    "not deleting container group %s: it belongs to another pod",
                    track.group,
                    extra=self._extra,
                )
                track.delete_sent_at = time.monotonic()
                return
        with contextlib.suppress(SaladNotFound):
            await self._mutate(lambda: self._salad.delete_container_group(track.group))
        track.delete_sent_at = time.monotonic()
        await self._events.on_pod(
            pod, "Normal", "ContainerGroupDeleted", f"deleted container group {track.group} ({why})"
        )
        log.info("deleted container group %s (%s)", track.group, why, extra=self._extra)
        self._list_soon()

    async def _create(self, pod: JSON, track: PodTrack) -> None:
        if self._decommissioning():
            # Removed from the configuration and being drained: a new group here (a
            # DaemonSet's replacement pod, say) would outlive the node.
            _back_off(track, _MAX_WAITING_BACKOFF)
            await self._wait_with(
                pod,
                track,
                "NodeDecommissioning",
                f"node {self._settings.name} is being removed from salad-vk's configuration "
                "and drained; it creates no new container group",
                refusal=False,
            )
            return
        body, sensitive = await self._translator.translate(pod)
        if isinstance(body, Refusal):
            await self._refused(pod, track, body)
            return
        body = with_owner(body, pod, self._settings.name, self._settings.cluster.id or "unknown")
        # From here the group may exist whatever the answer (a timeout after it was
        # sent): a deletion of the pod must then look for it.
        track.create_sent = True
        try:
            group = await self._mutate(lambda: self._salad.create_container_group(body))
        except NotOwned:
            # Refused before an attempt, but maybe after an earlier attempt of the same
            # call reached SaladCloud: create_sent stays (a deletion looks, a 404 is
            # cheap). Not this pod's failure: no event, no backoff (``_spawn``).
            raise
        except SaladNameConflict:
            await self._adopt_or_fail(pod, track)
            return
        except SaladError as error:
            await self._create_failed(pod, track, error, sensitive)
            return
        track.created_at = time.monotonic()
        track.fetched, track.fetched_at = group, track.created_at
        track.waiting = track.judged = None
        track.attempts = 0
        self._reporter.set_health(SaladHealth(True, "APIReachable", "SaladCloud answers"))
        await self._events.on_pod(
            pod,
            "Normal",
            "ContainerGroupCreated",
            f"created container group {track.group} in project "
            f"{self._settings.organization}/{self._settings.project}",
        )

    def _decommissioning(self) -> bool:
        meta = self._reporter.server_node().get("metadata") or {}
        return bool((meta.get("annotations") or {}).get(CORDONED_BY))

    async def _wait_with(
        self,
        pod: JSON,
        track: PodTrack,
        reason: str,
        message: str,
        *,
        event: str | None = None,
        refusal: bool = True,
    ) -> None:
        """Show the pod waiting for ``reason``: Pending, its container waiting, as the
        kubelet shows a pod it cannot start yet, and a Warning event (``event``, else
        ``reason``; the recorder folds repeats into a count). A ``refusal`` is counted
        once per pod."""
        if refusal:
            self._count_refusal(track, reason)
        track.waiting = (reason, message)
        await self._events.on_pod(pod, "Warning", event or reason, message)
        status = pending_status(
            pod, reason, message, now=datetime.now(UTC), node_ip=self._settings.node_ip
        )
        await self._write_status(pod, track, status)

    async def _refused(self, pod: JSON, track: PodTrack, refusal: Refusal) -> None:
        """The pod cannot become a group. It waits (never Failed: its controller would
        replace it with one refused the same way); nothing is sent to SaladCloud."""
        if refusal.permanent:
            # Judged again now and then all the same: a refusal may rest on a Secret's
            # value or the namespace's labels, which can be fixed without the pod.
            track.judged = pod_digest(pod)
            _back_off(track)
        else:
            _back_off(track, _MAX_WAITING_BACKOFF)
        await self._wait_with(pod, track, refusal.reason, refusal.message)

    async def _lookup(self, pod: JSON, track: PodTrack, *, after: str) -> ContainerGroup | None:
        """Our group, asked for by name; None after failing the pod because it is gone.

        ``after`` says what made us ask: the 404 means something different after a
        ``name_conflict`` (the name was ours and cannot be used again) than after a list.
        """
        try:
            return await self._salad.get_container_group(track.group)
        except SaladNotFound:
            message = f"container group {track.group} was deleted outside Kubernetes"
            if after == "name_conflict":
                message += " (SaladCloud never reuses a name, so it cannot be created again)"
            await self._fail(pod, track, "ContainerGroupDeleted", message)
            return None

    async def _adopt_or_fail(self, pod: JSON, track: PodTrack) -> None:
        group = await self._lookup(pod, track, after="name_conflict")
        if group is None:
            return
        owner = owner_of(group)
        if owner is None or owner.uid != track.uid:
            # Which pod holds it is none of this pod's readers' business (another tenant).
            await self._fail(
                pod,
                track,
                "ContainerGroupNameTaken",
                f"container group name {track.group} belongs to another pod",
            )
            return
        track.created_at = time.monotonic()
        track.fetched, track.fetched_at = group, track.created_at
        log.info("adopted existing container group %s", group.name, extra=self._extra)

    async def _create_failed(
        self, pod: JSON, track: PodTrack, error: SaladError, sensitive: frozenset[str]
    ) -> None:
        """The pod waits and the create is tried again later; a refusal from SaladCloud
        (a 4xx that retrying will not change, say a quota) waits longer."""
        # SaladCloud may quote the body back: Secret values stay out of events, pod status
        # and the node's condition.
        said = scrub(str(error), sensitive)
        self._saw_error(error, said)
        _back_off(track)
        if error.permanent and not isinstance(error, SaladAuthError):
            message = f"SaladCloud refused the container group, will retry: {said}"
            await self._wait_with(pod, track, "ContainerGroupRejected", message)
            return
        message = f"SaladCloud create failed, will retry: {said}"
        if track.attempts in (1, 4, 8):
            await self._wait_with(
                pod,
                track,
                "ContainerCreating",
                message,
                event="ContainerGroupCreateFailed",
                refusal=False,
            )
        else:
            track.waiting = ("ContainerCreating", message)

    async def _confirm(self, pod: JSON, track: PodTrack) -> None:
        """The list did not show our group: ask for it by name before believing it gone."""
        group = await self._lookup(pod, track, after="list")
        if group is None:
            return
        track.fetched, track.fetched_at = group, time.monotonic()

    async def _read_instances(self, pod: JSON, track: PodTrack, group: ContainerGroup) -> None:
        try:
            track.instances = await self._salad.list_instances(group.name)
        except SaladNotFound:
            track.instances = []
        write = status_action(pod, track, group, self._circumstances())
        if write is not None:
            await self._write_status(pod, track, write.status)

    # --- debts -------------------------------------------------------------------------

    def _pay_debts(self, actions: TaskGroup, listing: Listing, now: float) -> None:
        for debt in self.owed:
            listed = listing.groups.get(debt.group)
            if debt.sent_at is not None:
                if listed is None and listing.complete and listing.sent_at > debt.sent_at:
                    log.info("deletion of %s confirmed", debt.group, extra=self._extra)
                    self.owed.settle(debt.group)
                    self._debts_moved()
                    continue
                if now - debt.sent_at < RESEND_AFTER:
                    continue
            owner = owner_of(listed) if listed is not None else None
            if listed is not None and (owner is None or owner.uid != debt.uid):
                log.warning(
                    "owed deletion of %s dropped: the group is not pod %s's",
                    debt.group,
                    debt.pod,
                    extra=self._extra,
                )
                self.owed.settle(debt.group)
                self._debts_moved()
                continue
            if debt.uid in self._busy or now < debt.next_attempt:
                continue
            self._spawn(
                actions,
                debt.uid,
                functools.partial(self._pay, debt, listed),
                functools.partial(_back_off, debt, 60.0),
                debt,
            )
        if self._metrics is not None:
            self._metrics.owed_deletions.labels(node=self._settings.name).set(len(self.owed))

    async def _pay(self, debt: Debt, listed: ContainerGroup | None) -> None:
        if not debt.seen:
            verdict = await self._restored_debt(debt, listed)
            if verdict == "wait":
                _back_off(debt, 60.0)
                return
            if verdict == "drop":
                self.owed.settle(debt.group)
                self._debts_moved()
                return
        try:
            await self._mutate(lambda: self._salad.delete_container_group(debt.group))
        except SaladNotFound:
            log.info("owed deletion of %s: already gone", debt.group, extra=self._extra)
            self.owed.settle(debt.group)
            self._debts_moved()
            return
        debt.sent_at = time.monotonic()
        log.info(
            "deleted container group %s (pod %s is gone)", debt.group, debt.pod, extra=self._extra
        )
        self._list_soon()

    async def _restored_debt(
        self, debt: Debt, listed: ContainerGroup | None
    ) -> Literal["pay", "drop", "wait"]:
        """Whether to pay a debt this process did not see arise.

        It was read back from the Node, which anyone allowed to patch Nodes can write:
        it is paid only for a group provably this node's, in this cluster, of the
        debt's pod, and whose pod is gone (the orphan collector's rules, without its
        wait). The pod is looked up by the group's own marks, never by the annotation's
        word. Without the cluster's identity nothing can be proven yet: wait.
        """
        if not self._settings.cluster.id:
            return "wait"
        group = listed
        if group is None:
            try:
                group = await self._salad.get_container_group(
                    debt.group, priority=Priority.MUTATION
                )
            except SaladNotFound:
                log.info("owed deletion of %s: already gone", debt.group, extra=self._extra)
                return "drop"
        owner = owner_of(group)
        if (
            owner is None
            or owner.uid != debt.uid
            or owner.node != self._settings.name
            or owner.cluster != self._settings.cluster.id
        ):
            log.warning(
                "owed deletion of %s dropped: the group does not carry this node's marks "
                "for pod %s (%s)",
                debt.group,
                debt.pod,
                debt.uid,
                extra=self._extra,
            )
            return "drop"
        if await self._pod_alive(owner.namespace, owner.name, owner.uid):
            log.warning(
                "owed deletion of %s dropped: its pod %s/%s is alive",
                debt.group,
                owner.namespace,
                owner.name,
                extra=self._extra,
            )
            return "drop"
        return "pay"

    async def _pod_alive(self, namespace: str, name: str, uid: str) -> bool:
        try:
            # The names come from SaladCloud (owner marks) or our own annotation:
            # escaped, they can only ever name a pod.
            pod = await self._kube.get(
                api_path(
                    "/api/v1/namespaces/{namespace}/pods/{name}", namespace=namespace, name=name
                )
            )
        except KubeNotFound:
            return False
        return bool(pod["metadata"]["uid"] == uid)

    # --- orphans -----------------------------------------------------------------------

    def _collect_orphans(
        self, actions: TaskGroup, listing: Listing, live: Mapping[str, str], now: float
    ) -> None:
        if not (self._pods.synced and self._pods.lists > 0):
            return
        if not self._settings.cluster.id:
            return
        for name, group in listing.groups.items():
            if name in live or name in self.owed or uid_suffix(name) is None:
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
        if await self._pod_alive(owner.namespace, owner.name, owner.uid):
            return
        reason = (
            f"container group {group.name} is orphaned: pod {owner.namespace}/{owner.name} "
            f"({owner.uid}) no longer exists"
        )
        try:
            await self._mutate(lambda: self._salad.delete_container_group(group.name))
        except SaladNotFound:
            return
        log.warning("deleted orphaned %s", reason, extra=self._extra)
        if self._metrics is not None:
            self._metrics.orphans_deleted.labels(node=self._settings.name).inc()
        await self._events.on_node(
            self._reporter.uid, "Warning", "OrphanedContainerGroupDeleted", reason
        )
