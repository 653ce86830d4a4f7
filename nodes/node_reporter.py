"""Registers the Node and keeps its status and outage taint true on the server.

What the node wants is compared with the Node *as the server has it* (from the
process's ``NodeCache``), every lease interval and whenever the Node changes: after a
lease lapse the node lifecycle controller sets Ready to Unknown and taints the node
unreachable, and only a fresh Ready from us takes that back. Comparing with what we
last wrote would see nothing to do, for as long as five minutes.

Otherwise status is patched when something in it changes (a SaladCloud health
transition, capacity) and at least every ``status_report_interval`` (5 min, like the
kubelet's ``nodeStatusReportFrequency``); liveness itself travels by the Lease.
Patches are strategic merges keyed on condition ``type``, so conditions written by
others (node-problem-detector, an operator) are kept.

Taints are ``spec`` and a list without a merge key, so they are edited and written
back under the object's resourceVersion: the node lifecycle controller's own taints
survive, and a concurrent change makes us read again and retry, never give up.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .jitter import jittered
from .kube import KubeClient, KubeConflict, KubeError, KubeNotFound
from .node_cache import NodeCache
from .node_object import (
    SaladHealth,
    node_labels,
    node_manifest,
    node_status,
    status_changed,
    taints_with_unavailability,
)
from .settings import CORDONED_BY, NodeSettings
from .tenure import NotOwned

log = logging.getLogger(__name__)


JSON = dict[str, Any]

_CONFLICT_BACKOFF = 0.2


def _revision(node: JSON) -> int | None:
    """The etcd revision of a Node as the server stamped it, if it reads as one."""
    try:
        return int((node.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return None


class NodeReporter:
    def __init__(self, kube: KubeClient, settings: NodeSettings, nodes: NodeCache) -> None:
        self._kube = kube.unlimited()
        self._settings = settings
        self._nodes = nodes
        self._path = f"/api/v1/nodes/{settings.name}"
        self.uid = ""
        self._health = SaladHealth.unknown()
        self._written: JSON = {}
        """The Node as our last read or write of it returned it."""
        self._wake = anyio.Event()
        self._extra = {"node": settings.name, "project": settings.project}

    def set_health(self, health: SaladHealth) -> None:
        """Record SaladCloud's health; a change is written at once."""
        if health != self._health:
            if health.reachable != self._health.reachable or health.reason != self._health.reason:
                log.log(
                    logging.INFO if health.reachable else logging.WARNING,
                    "SaladCloud %s: %s (%s)",
                    "reachable" if health.reachable else "unavailable",
                    health.message,
                    health.reason,
                    extra=self._extra,
                )
            self._health = health
            self._wake.set()

    async def register(self) -> dict[str, Any]:
        """Create the Node, or adopt the existing one; return it (``uid`` is set)."""
        try:
            node = await self._kube.get(self._path)
        except KubeNotFound:
            node = await self._kube.post("/api/v1/nodes", node_manifest(self._settings))
            if self.uid:
                log.warning("node object was deleted; registered it again", extra=self._extra)
            else:
                log.info("registered node", extra=self._extra)
        else:
            node = await self._adopt(node)
        self.uid = str(node["metadata"]["uid"])
        self._written = node
        await self._write_status(force=True)
        return node

    async def _adopt(self, node: dict[str, Any]) -> dict[str, Any]:
        """Bring labels, providerID and configured taints of an existing Node up to date."""
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        labels = node_labels(self._settings)
        taints = list(spec.get("taints") or [])
        present = {(t.get("key"), t.get("effect")) for t in taints}
        missing = [dict(t) for t in self._settings.taints if (t["key"], t["effect"]) not in present]
        patch: dict[str, Any] = {}
        if any((meta.get("labels") or {}).get(k) != v for k, v in labels.items()):
            patch["metadata"] = {"labels": labels}
        if spec.get("providerID") != self._settings.provider_id and not spec.get("providerID"):
            patch.setdefault("spec", {})["providerID"] = self._settings.provider_id
        if missing:
            patch.setdefault("spec", {})["taints"] = taints + missing
            patch.setdefault("metadata", {})["resourceVersion"] = meta.get("resourceVersion")
        if (meta.get("annotations") or {}).get(CORDONED_BY):
            # Drained for a removal that was taken back: serve it again.
            patch.setdefault("metadata", {})["annotations"] = {CORDONED_BY: None}
            patch.setdefault("spec", {})["unschedulable"] = None
        if not patch:
            return node
        return await self._kube.patch(self._path, patch, kind="merge")

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with self._nodes.subscribe(self._settings.name, self._poke):
            task_status.started()
            next_report = time.monotonic() + self._settings.status_report_interval
            while True:
                interval = jittered(self._settings.lease_renew_interval)
                wait = min(next_report - time.monotonic(), interval)
                with anyio.move_on_after(max(0.0, wait)):
                    await self._wake.wait()
                self._wake = anyio.Event()
                due = time.monotonic() >= next_report
                try:
                    await self._write_taints()
                    await self._write_status(force=due)
                except KubeNotFound:
                    await self.register_retrying()
                except KubeError as error:
                    # Refused by the gate (paused, handing off): nothing failed, and the
                    # Lease keeper already says why once.
                    say = log.debug if isinstance(error, NotOwned) else log.warning
                    say("node status write failed: %s", error, extra=self._extra)
                    await anyio.sleep(2)
                    self._wake.set()
                    continue
                if due:
                    next_report = time.monotonic() + self._settings.status_report_interval

    async def annotate(self, key: str, value: str | None) -> None:
        """Set (or, with None, remove) one annotation of the Node."""
        self._written = await self._kube.patch(
            self._path, {"metadata": {"annotations": {key: value}}}, kind="merge"
        )

    def _poke(self) -> None:
        self._wake.set()

    def server_node(self) -> JSON:
        """The freshest Node known: the cache's copy, unless our own last write is newer
        (the watch has not brought it back yet)."""
        cached = self._nodes.get(self._settings.name)
        if cached is None:
            return self._written
        mine, theirs = _revision(self._written), _revision(cached)
        if mine is not None and theirs is not None and mine > theirs:
            return self._written
        return cached

    async def ensure_registered(self) -> str:
        """The Node's UID as it is now, registering the Node again if it was deleted."""
        try:
            node = await self._kube.get(self._path)
        except KubeNotFound:
            await self.register()
            return self.uid
        self.uid = str(node["metadata"]["uid"])
        return self.uid

    async def register_retrying(self) -> None:
        """``register`` until it succeeds, backing off up to 30 s between attempts."""
        backoff = 0.5
        while True:
            try:
                await self.register()
            except KubeError as error:
                log.warning("node registration failed: %s", error, extra=self._extra)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            else:
                return

    async def _write_status(self, *, force: bool) -> None:
        server = self.server_node().get("status") or {}
        status = node_status(
            self._settings, self._health, datetime.now(UTC), server.get("conditions") or ()
        )
        if not force and not status_changed(status, server):
            return
        # Addresses merge by type in a strategic merge: replace the list, or an address
        # written before (a Hostname nothing resolves) would stay.
        addresses = [{"$patch": "replace"}, *status["addresses"]]
        patch = {"status": {**status, "addresses": addresses}}
        self._written = await self._kube.patch(f"{self._path}/status", patch)

    async def _write_taints(self) -> None:
        """Add or remove our outage taint; a conflicting write is read again and retried."""
        unavailable = not self._health.reachable
        node = self.server_node()
        while True:
            taints = (node.get("spec") or {}).get("taints") or []
            wanted = taints_with_unavailability(taints, unavailable)
            if wanted is None:
                return
            try:
                self._written = await self._kube.patch(
                    self._path,
                    {
                        "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                        "spec": {"taints": wanted},
                    },
                    kind="merge",
                )
            except KubeConflict:
                await anyio.sleep(_CONFLICT_BACKOFF)
                node = self._written = await self._kube.get(self._path)
                continue
            return
