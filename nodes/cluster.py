"""What every node of a process needs to know about the cluster, read once.

The cluster's identity (the UID of its ``kube-system`` namespace) goes into each
container group's owner marks, so that orphan collection can tell this cluster's
groups from those of another cluster serving the same project; the API server's
version is the ``kube-probe/<version>`` User-Agent of HTTP probes, as the kubelet
sends it. Both are facts about the cluster, not the node: fifty nodes read them once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .kube import KubeClient, KubeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterFacts:
    id: str = ""
    """The UID of kube-system; empty if it could not be read (then no orphan is
    collected: without it, another cluster's groups cannot be told apart)."""
    version: str = ""
    """The API server's gitVersion, e.g. ``v1.36.3``."""


async def read_cluster_facts(kube: KubeClient) -> ClusterFacts:
    """Read both facts; a fact that cannot be read is logged and left empty."""
    cluster_id = version = ""
    try:
        cluster_id = str((await kube.get("/api/v1/namespaces/kube-system"))["metadata"]["uid"])
    except KubeError as error:
        log.warning(
            "cannot read the cluster's identity (namespace kube-system): %s; orphaned "
            "container groups will not be collected",
            error,
        )
    try:
        version = str((await kube.get("/version")).get("gitVersion") or "")
    except KubeError as error:
        log.warning("cannot read the API server version: %s", error)
    return ClusterFacts(cluster_id, version)
