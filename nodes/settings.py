"""What one virtual node needs to know about itself, as plain immutable data.

The supervisor builds a ``NodeSettings`` from the projects file and the process
settings; tests build one directly. Keeping the node independent of the file format
means a config change can only reach a node by building a new ``NodeSettings``,
which is exactly when the supervisor restarts it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.node import DEFAULT_CAPACITY
from config.node import PROVIDER_TAINT as _PROVIDER_TAINT

from .cluster import ClusterFacts
from .tenure import renew_deadline

PROVIDER_TAINT: dict[str, Any] = _PROVIDER_TAINT.model_dump(exclude_none=True)

CORDONED_BY = "salad.com/cordoned-by"
"""Marks a cordon salad-vk made to drain a node removed from the config, so that adding
the node back lifts it (and only that one: an administrator's cordon is theirs)."""

MANAGED_BY_LABEL = "node-restriction.kubernetes.io/salad-vk"
"""Names the process (the chart's release) that serves a Node and writes its Lease."""

UNAVAILABLE_TAINT_KEY = "salad.com/saladcloud-unavailable"
"""Put on the node (NoSchedule) while SaladCloud refuses its key or cannot be reached."""


def default_identity() -> str:
    """Who holds the leases: the pod name in a cluster, the host name elsewhere."""
    return os.environ.get("POD_NAME") or socket.gethostname()


@dataclass(frozen=True)
class NodeSettings:
    name: str
    """The Kubernetes Node name."""
    organization: str
    project: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, Any], ...] = (PROVIDER_TAINT,)
    capacity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))

    node_ip: str = "127.0.0.1"
    """The node's InternalIP: the supervisor's own pod IP (all nodes share it)."""
    kubelet_port: int = 10250
    identity: str = field(default_factory=default_identity)
    holder: str | None = None
    """``<identity>/<run id>`` of the process holding the node's Lease; None gives each
    node its own (a node run outside the supervisor, as in tests)."""
    version: str = "0.0.0"
    cluster: ClusterFacts = field(default_factory=ClusterFacts)
    """Read once per process (``read_cluster_facts``) and handed to every node."""

    poll_interval: float = 10.0
    """Seconds between two lists of the project's container groups (at least)."""
    lease_duration_seconds: int = 40
    lease_renew_interval: float = 10.0
    ownership_timeout: float = 15.0
    """The standbys' takeover threshold; this node stops acting on its own well before
    (``tenure.renew_deadline``) when its renewals fail."""
    status_report_interval: float = 300.0
    """Node status is patched on change, and at least this often."""
    resync_interval: float = 300.0
    """A full pod re-list as a safety net under the watch."""
    orphan_min_age: float = 600.0
    """A group this run of the node has seen for less than this is never garbage-collected."""
    delete_confirm_timeout: float = 120.0
    """How long a deleted pod waits for its group to vanish before it is removed anyway."""
    mutation_grace: float = 20.0
    """On cancellation, how long a create or delete already sent may take to finish."""

    allowed_namespaces: frozenset[str] | None = None
    """Namespaces whose pods the node serves; None: every namespace."""
    namespace_selector: Mapping[str, Any] | None = None
    """A LabelSelector (JSON) the pod's namespace must match; None: no such rule."""

    default_country_codes: tuple[str, ...] = ()
    default_gpu_classes: tuple[str, ...] = ()
    default_priority: str | None = None

    managed_by: str | None = None
    """Value of the ``node-restriction.kubernetes.io/salad-vk`` label on the Node and its Lease: the
    chart's admission policy lets this process write only objects that carry it."""

    @property
    def managed_by_labels(self) -> dict[str, str]:
        """The label naming the process that serves the node, for its Node and its Lease;
        none when ``managed_by`` is unset."""
        return {} if self.managed_by is None else {MANAGED_BY_LABEL: self.managed_by}

    @property
    def node_deadline(self) -> float:
        """How long after a renewal of its Lease was sent the node may still act: the
        next renewal is due after the interval, and may then take the renew deadline.
        It stays below what a standby waits for a holder it does not know as a replica
        (``lease_renew_interval + ownership_timeout``)."""
        return self.lease_renew_interval + renew_deadline(self.ownership_timeout)

    @property
    def provider_id(self) -> str:
        # A providerID keeps cloud node controllers (EKS, GKE, AKS) from deleting a
        # node they cannot find in their own cloud.
        return f"salad://{self.organization}/{self.project}"
