"""Kubernetes Events about pods and the node, with client-go's spam protection.

client-go's recorder aggregates repeats of one event into a count and limits each
object to a burst of 25 then one event per 300 s; a Python virtual kubelet has to
bring its own equivalent, or one crash-looping pod could flood etcd. Events are
best effort: a failed write is logged and dropped, never raised into the caller.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .kube import KubeClient, KubeError
from .translate import timestamp

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]

_BURST = 25
_REFILL_SECONDS = 300.0
_AGGREGATE_SECONDS = 600.0
_REMEMBERED = 4096


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    at: float


@dataclass
class _Bucket:
    tokens: float
    at: float


class EventRecorder:
    """Writes core/v1 Events from ``salad-vk`` on behalf of one node."""

    def __init__(self, kube: KubeClient, node_name: str, component: str = "salad-vk") -> None:
        self._kube = kube
        self._node = node_name
        self._component = component
        self._seen: OrderedDict[tuple[str, str, str], _Seen] = OrderedDict()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    async def on_pod(self, pod: dict[str, Any], kind: EventType, reason: str, message: str) -> None:
        meta = pod.get("metadata") or {}
        involved = {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "fieldPath": f"spec.containers{{{_first_container(pod)}}}",
        }
        await self._record(str(meta.get("namespace")), involved, kind, reason, message)

    async def on_node(self, node_uid: str, kind: EventType, reason: str, message: str) -> None:
        involved = {"apiVersion": "v1", "kind": "Node", "name": self._node, "uid": node_uid}
        await self._record("default", involved, kind, reason, message)

    def _allowed(self, uid: str, now: float) -> bool:
        bucket = self._buckets.get(uid)
        if bucket is None:
            bucket = self._buckets[uid] = _Bucket(_BURST, now)
            if len(self._buckets) > _REMEMBERED:
                self._buckets.popitem(last=False)
        else:
            # Least recently used goes first: a busy object must not be forgotten (and
            # handed a fresh burst) just because it was seen early.
            self._buckets.move_to_end(uid)
        bucket.tokens = min(_BURST, bucket.tokens + (now - bucket.at) / _REFILL_SECONDS)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    async def _record(
        self,
        namespace: str,
        involved: dict[str, Any],
        kind: EventType,
        reason: str,
        message: str,
    ) -> None:
        log_extra = {"node": self._node, "object": f"{involved['kind']}/{involved['name']}"}
        log.info("event %s %s: %s", kind, reason, message, extra=log_extra)
        now = time.monotonic()
        uid = str(involved.get("uid"))
        if not self._allowed(uid, now):
            return
        stamp = datetime.now(UTC)
        key = (uid, reason, message)
        seen = self._seen.get(key)
        try:
            if seen is not None and now - seen.at < _AGGREGATE_SECONDS:
                self._seen.move_to_end(key)
                seen.count += 1
                seen.at = now
                await self._kube.patch(
                    f"/api/v1/namespaces/{seen.namespace}/events/{seen.name}",
                    {"count": seen.count, "lastTimestamp": timestamp(stamp)},
                )
                return
            name = f"{involved['name']}.{uuid.uuid4().hex[:16]}"
            await self._kube.post(
                f"/api/v1/namespaces/{namespace}/events",
                {
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": involved,
                    "type": kind,
                    "reason": reason,
                    "message": message[:1024],
                    "source": {"component": self._component, "host": self._node},
                    "reportingComponent": self._component,
                    "reportingInstance": self._node,
                    "firstTimestamp": timestamp(stamp),
                    "lastTimestamp": timestamp(stamp),
                    "eventTime": None,
                    "count": 1,
                },
            )
            self._seen[key] = _Seen(name, namespace, 1, now)
            if len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
        except KubeError as error:
            self._seen.pop(key, None)
            log.warning("could not record event %s: %s", reason, error, extra=log_extra)


def _first_container(pod: dict[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("name") or "")
