"""Replicas announce themselves with Leases of their own, and watch each other's.

Each replica keeps one membership Lease in the release's namespace, named after its
identity, renewed every ``ownership_timeout / 7.5`` seconds (2 s by default) by
compare-and-swap, and annotated with the nodes its projects file lists and their
weights. Every replica lists and watches all of them (one label-selected watch, only
our own objects: no kubelet's heartbeat ever reaches it).

**Why liveness rides on these and not on the nodes' Leases.** The node Leases stay the
record of who owns each node and the compare-and-swap that fences a lost race; they
are renewed at the kubelet's 10 s, as before. Detecting a dead replica needs
something renewed well inside the 15 s takeover threshold: renewing 1,000 node Leases
every 2-5 s would cost 200-500 writes a second (each about 1 ms of this process's CPU,
``tests/benchmarks/lease_cost.py``), and a standby would have to watch every node's Lease in
``kube-node-lease`` (every kubelet's too). One membership Lease per replica costs 0.5
writes a second per replica, and standbys watch a handful of objects.

**Standing** (``MemberKeeper``) is this replica's own view of its membership: valid
until two thirds of ``ownership_timeout`` after the last successful renewal was
*sent*, and then never again in the same *epoch*: a renewal answered after that
deadline starts a new epoch, and node tenures begun in the old one stay refused
(``nodes/tenure.py``) until their own Lease is written again. A standby takes over
only after it has seen the Lease stand still for the whole ``ownership_timeout``, so
the holder has stopped acting a third of the timeout before anyone may start.

**The view** (``MemberView``) keeps, for every member, its Lease as last seen and when
this replica first saw that version, on its own monotonic clock. A member whose
version has not changed for ``ownership_timeout`` is *silent*; before its nodes are
taken, a fresh read confirms it (``MemberView.confirms``).
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus

from nodes.informer import Informer
from nodes.jitter import jittered
from nodes.kube import KubeClient, KubeConflict, KubeError, KubeNotFound
from nodes.lease import identity_of
from nodes.node_object import micro_timestamp
from nodes.tenure import renew_deadline

from .takeover import Liveness

log = logging.getLogger(__name__)

JSON = dict[str, Any]

MEMBER_LABEL = "salad.com/salad-vk-member"
NODES_ANNOTATION = "salad.com/nodes"
"""JSON ``{node: weight}``: the nodes this replica's projects file lists."""
LEAVING_ANNOTATION = "salad.com/leaving"
_PREFIX = "salad-vk-member-"
_MAX_IDENTITY = 200
_RESYNC = 300.0
FORGET_AFTER = 3600.0
"""A member whose Lease has stood still this long is gone for good (killed, its host
lost: only a clean stop deletes its own Lease); any replica deletes it, or the
namespace would collect one for every replica that ever died."""
_WATCH_TIMEOUT = 290
_WATCH_SILENCE = 30.0
"""This replica's own membership Lease changes every few seconds, and the watch sees it:
that long without an event, the connection is dead (half-open), and a stale view would
make placement and takeovers act on who was alive minutes ago."""


def retry_period(ownership_timeout: float) -> float:
    """How often a replica renews its membership: 2 s for the default 15 s (client-go's
    retryPeriod for its 15 s leaseDuration), so that five attempts fit in the
    renew deadline."""
    return ownership_timeout / 7.5


def resolve_identity(configured: str | None, environ: Mapping[str, str], hostname: str) -> str:
    """``--identity``, else ``$POD_NAME``, else the host name, made a DNS-1123
    subdomain (a host name may be upper case or too long) so that it can name a Lease."""
    raw = configured or environ.get("POD_NAME") or hostname
    name = re.sub(r"[^a-z0-9.-]+", "-", raw.lower()).strip("-.") or "salad-vk"
    name = re.sub(r"\.{2,}", ".", name)
    if len(name) > _MAX_IDENTITY:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
        name = f"{name[: _MAX_IDENTITY - 11].rstrip('-.')}-{digest}"
    return name


def member_lease_name(identity: str) -> str:
    return _PREFIX + identity


def _collection(namespace: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


# --- what a membership Lease says ----------------------------------------------------


@dataclass(frozen=True)
class MemberRecord:
    identity: str
    holder: str
    version: str
    leaving: bool
    nodes: Mapping[str, int]


def parse_member(lease: JSON) -> MemberRecord | None:
    """A membership Lease as a record; None if it is not one (or is unreadable)."""
    meta = lease.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not name.startswith(_PREFIX):
        return None
    annotations = meta.get("annotations") or {}
    try:
        announced = json.loads(annotations.get(NODES_ANNOTATION) or "{}")
    except ValueError:
        announced = None
    if not isinstance(announced, dict):
        log.warning("membership Lease %s announces no readable node list", name)
        announced = {}
    nodes = {
        str(node): int(weight)
        for node, weight in announced.items()
        if isinstance(weight, int) and not isinstance(weight, bool) and weight > 0
    }
    return MemberRecord(
        identity=name[len(_PREFIX) :],
        holder=str((lease.get("spec") or {}).get("holderIdentity") or ""),
        version=str(meta.get("resourceVersion") or ""),
        leaving=annotations.get(LEAVING_ANNOTATION) == "true",
        nodes=nodes,
    )


# --- everyone, as this replica sees them ----------------------------------------------


@dataclass
class _Seen:
    record: MemberRecord
    since: float
    """Monotonic time this replica first saw ``record.version``."""


class MemberView:
    """Every membership Lease as last seen, and since when; pure bookkeeping."""

    def __init__(self, ownership_timeout: float) -> None:
        self._timeout = ownership_timeout
        self._seen: dict[str, _Seen] = {}
        self.synced = False
        """True once a complete list has been seen."""

    def replace(self, records: list[MemberRecord], now: float) -> None:
        """A complete list: members not in it are gone; unchanged ones keep their age."""
        fresh = {}
        for record in records:
            old = self._seen.get(record.identity)
            since = old.since if old is not None and old.record.version == record.version else now
            fresh[record.identity] = _Seen(record, since)
        self._seen = fresh
        self.synced = True

    def observe(self, record: MemberRecord, now: float) -> bool:
        """A member's Lease as just seen; True if what it says changed (a new member,
        another holder, leaving, other nodes), False for a renewal alone, which only
        restarts its clock: placement need not run for every renewal."""
        old = self._seen.get(record.identity)
        if old is not None and old.record.version == record.version:
            return False
        self._seen[record.identity] = _Seen(record, now)
        if old is None or self._silent(old, now):
            return True  # a new member, or one heard from again
        return (old.record.holder, old.record.leaving, old.record.nodes) != (
            record.holder,
            record.leaving,
            record.nodes,
        )

    def forget(self, identity: str) -> bool:
        return self._seen.pop(identity, None) is not None

    def _silent(self, seen: _Seen, now: float) -> bool:
        return now - seen.since >= self._timeout

    def liveness(self, holder: str, now: float) -> Liveness:
        seen = self._seen.get(identity_of(holder))
        if seen is None:
            return Liveness.UNKNOWN
        if seen.record.holder != holder:
            return Liveness.REPLACED
        if self._silent(seen, now):
            return Liveness.SILENT
        return Liveness.LEAVING if seen.record.leaving else Liveness.LIVE

    def live(self, now: float) -> dict[str, MemberRecord]:
        """Members that are neither silent nor leaving, by identity."""
        return {
            identity: seen.record
            for identity, seen in self._seen.items()
            if seen.record.holder and not seen.record.leaving and not self._silent(seen, now)
        }

    def silent_for(self, seconds: float, now: float) -> list[MemberRecord]:
        """Members unchanged for ``seconds`` or more, as this replica has seen them."""
        return [seen.record for seen in self._seen.values() if now - seen.since >= seconds]

    def members(self) -> dict[str, MemberRecord]:
        return {identity: seen.record for identity, seen in self._seen.items()}

    def next_silence(self, now: float) -> float | None:
        """When the next member still heard from would turn silent, if none speaks."""
        times = [
            seen.since + self._timeout
            for seen in self._seen.values()
            if not self._silent(seen, now)
        ]
        return min(times) if times else None

    def confirms_silence(self, identity: str, fresh: MemberRecord | None, now: float) -> bool:
        """Whether a fresh read of ``identity``'s Lease proves it silent: unchanged since
        this replica first saw that version, ``ownership_timeout`` ago or more. A changed
        Lease is recorded, so the member is live again in this view."""
        seen = self._seen.get(identity)
        if fresh is None:
            self.forget(identity)
            return False
        if seen is None or seen.record.version != fresh.version:
            self.observe(fresh, now)
            return False
        return self._silent(seen, now)


# --- this replica's own membership -----------------------------------------------------


class Phase(enum.Enum):
    JOINING = "joining"
    MEMBER = "member"
    LEAVING = "leaving"


@dataclass
class _Observed:
    version: str
    since: float


class MemberKeeper:
    """This replica's membership Lease: joined, renewed, announced, left.

    Implements ``nodes.tenure.Standing``.
    """

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        identity: str,
        holder: str,
        *,
        ownership_timeout: float,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube.unlimited()
        self._clock = clock
        self._collection = _collection(namespace)
        self.name = member_lease_name(identity)
        self._path = f"{self._collection}/{self.name}"
        self.identity = identity
        self.holder = holder
        self._timeout = ownership_timeout
        self._deadline = renew_deadline(ownership_timeout)
        self._period = retry_period(ownership_timeout)
        self._on_change = on_change
        self._lease: JSON | None = None
        self._nodes: dict[str, int] = {}
        self._announced: str | None = None
        self._epoch = 0
        self._epoch_began = -math.inf
        self._valid_until = -math.inf
        self.phase = Phase.JOINING
        self._wake = anyio.Event()
        self._lock = anyio.Lock()
        self._foreign: _Observed | None = None
        """Another process holding our Lease (same identity!), as first seen."""
        self._extra = {"member": identity}

    # --- Standing --------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def epoch_began(self) -> float:
        return self._epoch_began

    def valid(self, now: float) -> bool:
        return self.phase is Phase.MEMBER and now < self._valid_until

    @property
    def valid_until(self) -> float:
        return self._valid_until

    @property
    def leaving(self) -> bool:
        # A property, not a comparison in place: ``leave`` changes the phase while
        # ``run`` awaits, which a type checker cannot see.
        return self.phase is Phase.LEAVING

    # --- what the supervisor tells it --------------------------------------------------

    def announce(self, nodes: Mapping[str, int]) -> None:
        """The nodes this replica's projects file lists, with their weights; written at
        once (well, at the next renewal, which this brings forward)."""
        self._nodes = dict(nodes)
        self._wake.set()

    @property
    def nodes(self) -> Mapping[str, int]:
        return self._nodes

    async def leave(self, within: float = 3.0) -> None:
        """Stop being a member now (standing ends at once), and say so in the Lease so
        the others stop giving this replica nodes and start taking its own."""
        self.phase = Phase.LEAVING
        self._on_change()
        with anyio.move_on_after(within):
            await self._on_the_way_out("mark membership as leaving", self._mark_leaving, within)

    async def remove(self, within: float = 3.0) -> None:
        """Delete the membership Lease (last step of a clean shutdown)."""
        with anyio.move_on_after(within):
            await self._on_the_way_out("delete the membership Lease", self._delete, within)
            self._lease = None

    async def _mark_leaving(self, lease: JSON, within: float) -> None:
        body = copy.deepcopy(lease)
        body["metadata"].setdefault("annotations", {})[LEAVING_ANNOTATION] = "true"
        self._lease = await self._kube.put(self._path, body, request_timeout=within)

    async def _delete(self, lease: JSON, within: float) -> None:
        version = lease["metadata"].get("resourceVersion")
        await self._kube.delete(self._path, {"preconditions": {"resourceVersion": version}})

    async def _on_the_way_out(
        self, step: str, write: Callable[[JSON, float], Awaitable[None]], within: float
    ) -> None:
        """One write of the Lease as last known, once more after a conflict if the
        Lease is still this run's (``_reread_own``); a failure is logged, not raised:
        the process is leaving either way."""
        async with self._lock:
            for attempt in range(2):
                if self._lease is None:
                    return
                try:
                    await write(self._lease, within)
                except KubeConflict as error:
                    if not attempt and await self._reread_own(within):
                        continue
                    log.warning("could not %s: %s", step, error, extra=self._extra)
                except KubeError as error:
                    log.warning("could not %s: %s", step, error, extra=self._extra)
                return

    async def _reread_own(self, within: float) -> bool:
        """After a conflict on the way out: True, with the Lease as it is now, if it is
        still this run's. A renewal cut short by the shutdown may have been written
        though its answer never came back; the Lease is then ours at a newer version,
        and marking it leaving or deleting it must not fail on that. Another run's
        Lease (a restart took it over) is left alone."""
        try:
            current = await self._kube.get(self._path, request_timeout=within)
        except KubeError:
            return False
        if (current.get("spec") or {}).get("holderIdentity") != self.holder:
            self._lease = None
            return False
        self._lease = current
        return True

    # --- running ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Join (retrying until it works), signal, then renew until cancelled."""
        backoff = 0.5
        while True:
            try:
                async with self._lock:
                    await self._renew()
                break
            except KubeError as error:
                log.error(
                    "cannot write this replica's membership Lease %s: %s; retrying",
                    self._path,
                    error,
                    extra=self._extra,
                )
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        task_status.started()
        pause = self._period
        while self.phase is not Phase.LEAVING:
            with anyio.move_on_after(jittered(pause)):
                await self._wake.wait()
            self._wake = anyio.Event()
            if self.leaving:
                break
            try:
                async with self._lock:
                    await self._renew()
                pause = self._period
            except Exception as error:  # membership never dies of what it did not foresee
                # Again soon, not a period later: the deadline allows few attempts.
                if isinstance(error, KubeError):
                    log.warning("membership renewal failed: %s", error, extra=self._extra)
                else:
                    log.exception("membership renewal failed unexpectedly", extra=self._extra)
                pause = min(self._period, 0.25)
            if self.phase is Phase.MEMBER and self._clock() >= self._valid_until:
                self._on_change()  # lapsed: the supervisor stops this replica's nodes
        await anyio.sleep_forever()

    def _body(self, current: JSON | None) -> JSON:
        now = micro_timestamp(datetime.now(UTC))
        body: JSON = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": {"leaseTransitions": 0},
        }
        if current is not None:
            body = copy.deepcopy(current)
        meta = body["metadata"]
        meta.setdefault("labels", {})[MEMBER_LABEL] = "true"
        annotations = meta.setdefault("annotations", {})
        annotations[NODES_ANNOTATION] = json.dumps(
            self._nodes, sort_keys=True, separators=(",", ":")
        )
        annotations.pop(LEAVING_ANNOTATION, None)
        spec = body.setdefault("spec", {})
        if spec.get("holderIdentity") != self.holder:
            if current is not None:
                spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = now
        spec["holderIdentity"] = self.holder
        spec["leaseDurationSeconds"] = max(1, math.ceil(self._timeout))
        spec["renewTime"] = now
        return body

    def _timeout_for_attempt(self) -> float:
        left = self._valid_until - self._clock()
        return max(0.5, min(2 * self._period, left)) if left > 0 else 2 * self._period

    async def _renew(self) -> None:
        limit = self._timeout_for_attempt()
        if self._lease is None:
            await self._join(limit)
            return
        sent = self._clock()
        try:
            written = await self._kube.put(
                self._path, self._body(self._lease), request_timeout=limit
            )
        except (KubeConflict, KubeNotFound):
            # Changed or deleted by someone else: read it again, then go on if it is
            # still (or again) ours, and step back if another process holds it.
            self._lease = None
            await self._join(limit)
            return
        self._succeeded(written, sent)

    async def _join(self, limit: float) -> None:
        try:
            current: JSON | None = await self._kube.get(self._path, request_timeout=limit)
        except KubeNotFound:
            current = None
        if current is not None and not self._may_take(current):
            return
        sent = self._clock()
        if current is None:
            written = await self._kube.post(
                self._collection, self._body(None), request_timeout=limit
            )
        else:
            written = await self._kube.put(self._path, self._body(current), request_timeout=limit)
        self._succeeded(written, sent)

    def _may_take(self, current: JSON) -> bool:
        """Our identity's Lease: free, ours, or an earlier run's (the pod restarted) may
        be taken at once. Another live process with *our* identity must not be fought:
        we wait until it has stood still for the ownership timeout."""
        holder = str((current.get("spec") or {}).get("holderIdentity") or "")
        if not holder or holder == self.holder:
            return True
        version = str(current["metadata"].get("resourceVersion"))
        now = self._clock()
        if (
            identity_of(holder) == self.identity
            and self.phase is Phase.JOINING
            and self._foreign is None
        ):
            return True
        if self._foreign is None or self._foreign.version != version:
            if self._foreign is None:
                log.error(
                    "membership Lease %s is held by %s: another process uses the identity %s;"
                    " this one serves nothing until that one stops",
                    self.name,
                    holder,
                    self.identity,
                    extra=self._extra,
                )
            self._foreign = _Observed(version, now)
            if self.phase is Phase.MEMBER:
                self._valid_until = -math.inf
                self._on_change()
            return False
        return now - self._foreign.since >= self._timeout

    def _succeeded(self, written: JSON, sent: float) -> None:
        self._lease = written
        self._foreign = None
        answered = self._clock()
        joined = self.phase is Phase.JOINING
        until = sent + self._deadline
        # Back in good standing after a lapse (or for the first time): a new epoch. A
        # success that does not make us valid (sent too long ago) changes nothing.
        lapsed = answered >= self._valid_until and until > answered
        if lapsed:
            self._epoch += 1
            self._epoch_began = answered
        self._valid_until = max(self._valid_until, until)
        if self.phase is not Phase.LEAVING:
            self.phase = Phase.MEMBER
        if joined or lapsed:
            log.info(
                "member of the replica set (epoch %d)%s",
                self._epoch,
                "" if joined else " again after a lapse",
                extra=self._extra,
            )
            self._on_change()


# --- everyone's Leases, watched -------------------------------------------------------


class MemberWatch:
    """Keeps a ``MemberView`` in step with the membership Leases of the namespace: an
    ``Informer`` (list, watch, relist) whose changes become the view's, and, after
    every resync interval, the Leases of replicas long gone deleted."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        view: MemberView,
        on_change: Callable[[], None],
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.view = view
        self.on_change = on_change
        self._leases = Informer(
            kube,
            _collection(namespace),
            {"labelSelector": MEMBER_LABEL},
            on_change=self._changed,
            resync_interval=_RESYNC,
            watch_timeout=_WATCH_TIMEOUT,
            silence_timeout=_WATCH_SILENCE,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tasks:
            await tasks.start(self._leases.run)
            self.view.synced = True
            self.on_change()
            task_status.started()
            while True:
                await anyio.sleep(_RESYNC)
                await self._forget_the_long_gone()

    def _changed(self, name: str) -> None:
        lease = self._leases.items.get(name)
        record = parse_member(lease) if lease is not None else None
        if record is not None:
            changed = self.view.observe(record, time.monotonic())
        elif lease is None and name.startswith(_PREFIX):
            changed = self.view.forget(name[len(_PREFIX) :])
        else:
            return
        if changed and self.view.synced:
            self.on_change()

    async def _forget_the_long_gone(self) -> None:
        for record in self.view.silent_for(FORGET_AFTER, time.monotonic()):
            path = f"{_collection(self.namespace)}/{member_lease_name(record.identity)}"
            # Only the version seen standing still: a replica back meanwhile keeps it.
            try:
                await self.kube.delete(path, {"preconditions": {"resourceVersion": record.version}})
            except (KubeConflict, KubeNotFound):
                continue
            except KubeError as error:
                log.warning(
                    "deleting the Lease of long-gone member %s failed: %s", record.identity, error
                )
                continue
            self.view.forget(record.identity)
            log.info(
                "replica %s silent for over %.0f minutes: its membership Lease deleted",
                record.identity,
                FORGET_AFTER / 60,
            )
