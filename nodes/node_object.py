"""The Node object of a virtual node: its manifest and status, as pure functions.

Conditions follow the kubelet's reasons so dashboards and ``kubectl describe`` read
as for any node. Ready means "this supervisor is alive and serving this node" —
never "SaladCloud is healthy": a Ready flip would taint the node NoExecute and, after
the default 300 s toleration, evict every pod and delete its workload. SaladCloud's
health has a condition of its own, ``SaladCloudReachable``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .settings import UNAVAILABLE_TAINT_KEY, NodeSettings
from .translate import timestamp
from .translate.quantity import parse_quantity

SALAD_CONDITION = "SaladCloudReachable"
OWN_CONDITIONS = (
    "Ready",
    "MemoryPressure",
    "DiskPressure",
    "PIDPressure",
    "NetworkUnavailable",
    SALAD_CONDITION,
)


@dataclass(frozen=True)
class SaladHealth:
    """What the node last learned about SaladCloud, as a condition states it."""

    reachable: bool
    reason: str
    message: str

    @classmethod
    def unknown(cls) -> SaladHealth:
        return cls(True, "NotYetChecked", "SaladCloud has not been called yet")


def micro_timestamp(moment: datetime) -> str:
    """``MicroTime`` as leases want it (``timestamp`` is Kubernetes' second-precise Time)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_labels(settings: NodeSettings) -> dict[str, str]:
    labels = {
        "type": "virtual-kubelet",
        "kubernetes.io/role": "agent",
        "kubernetes.io/hostname": settings.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/exclude-from-external-load-balancers": "true",
        "salad.com/organization": settings.organization,
        "salad.com/project": settings.project,
    }
    labels.update(settings.labels)
    # Last, so a configured label cannot take its place: the chart's admission policy
    # lets the process write only the Nodes that carry it.
    labels.update(settings.managed_by_labels)
    return labels


def node_manifest(settings: NodeSettings) -> dict[str, Any]:
    """The Node to create when none exists."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": settings.name,
            "labels": node_labels(settings),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "providerID": settings.provider_id,
            "taints": [dict(t) for t in settings.taints],
        },
    }


def _condition(
    row: tuple[str, str, str, str], now: str, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    kind, status, reason, message = row
    unchanged = previous is not None and previous.get("status") == status
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": (previous or {}).get("lastTransitionTime", now) if unchanged else now,
    }


def node_conditions(
    health: SaladHealth, now: datetime, previous: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The conditions this node owns; others' conditions are left to the merge patch."""
    stamp = timestamp(now)
    before = {str(c.get("type")): c for c in previous}
    salad_status = "True" if health.reachable else "False"
    rows = [
        ("Ready", "True", "KubeletReady", "salad-vk is posting ready status"),
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "SaladCloud sizes each group"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "SaladCloud sizes each group"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "SaladCloud sizes each group"),
        ("NetworkUnavailable", "False", "RouteCreated", "no pod network to set up"),
        (SALAD_CONDITION, salad_status, health.reason, health.message),
    ]
    return [_condition(row, stamp, before.get(row[0])) for row in rows]


def node_status(
    settings: NodeSettings,
    health: SaladHealth,
    now: datetime,
    previous_conditions: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``status`` to patch: capacity, conditions, addresses, nodeInfo."""
    capacity = dict(settings.capacity)
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": node_conditions(health, now, previous_conditions),
        # Only the InternalIP: the API server tries a Hostname address first for logs
        # and the node proxy, and nothing resolves a virtual node's name.
        "addresses": [{"type": "InternalIP", "address": settings.node_ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": settings.kubelet_port}},
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "osImage": "SaladCloud",
            "kernelVersion": "",
            "kubeletVersion": f"v{settings.version}-salad-vk",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": f"saladcloud://{settings.organization}/{settings.project}",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


def _amounts(resources: Any) -> dict[str, Any]:
    """Quantities by what they stand for: the server stores ``10000`` as ``10k``."""
    return {str(k): parse_quantity(v) for k, v in (resources or {}).items()}


def status_changed(desired: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether a patch would change anything but heartbeat times (and quantity spelling)."""

    def strip(conditions: Any) -> dict[str, tuple[Any, ...]]:
        return {
            str(c.get("type")): (c.get("status"), c.get("reason"), c.get("message"))
            for c in conditions or ()
            if c.get("type") in OWN_CONDITIONS
        }

    if strip(desired.get("conditions")) != strip(current.get("conditions")):
        return True
    if any(
        _amounts(desired.get(k)) != _amounts(current.get(k)) for k in ("capacity", "allocatable")
    ):
        return True
    return any(
        desired.get(key) != current.get(key) for key in ("addresses", "nodeInfo", "daemonEndpoints")
    )


def taints_with_unavailability(
    taints: Sequence[Mapping[str, Any]], unavailable: bool
) -> list[dict[str, Any]] | None:
    """The node's taints with our NoSchedule outage taint added or removed.

    Returns None when nothing would change, so the caller can skip the write.
    """
    others = [dict(t) for t in taints if t.get("key") != UNAVAILABLE_TAINT_KEY]
    has = len(others) != len(taints)
    if unavailable == has:
        return None
    if unavailable:
        others.append({"key": UNAVAILABLE_TAINT_KEY, "value": "true", "effect": "NoSchedule"})
    return others
