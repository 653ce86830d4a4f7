"""What happens to a node that was removed from the projects file.

``drain`` (the default) keeps the node serving while it empties: it is cordoned so
nothing new lands on it, each of its pods is deleted gracefully — the node itself
then deletes the pod's container group and confirms the pod's removal, exactly as
for any other deletion — and only when no pod is left (or ``drain_timeout``, the
``--drain-timeout-seconds`` setting, passed) is its task stopped and its Node and Lease
deleted.

``orphan`` stops the node and deletes Node and Lease at once: Kubernetes' pod
garbage collector then removes the pods, but their container groups keep running
in SaladCloud until someone deletes them. ``keep`` only stops serving: the Node
stays, goes NotReady, and its pods are eventually evicted by Kubernetes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import anyio

from config import DecommissionPolicy
from nodes.kube import KubeClient, KubeError, KubeNotFound, api_path
from nodes.settings import CORDONED_BY

log = logging.getLogger(__name__)

_POLL = 2.0


async def _pods_on(kube: KubeClient, node: str) -> list[dict[str, object]]:
    """The pods a drain waits for: all of the node's but DaemonSet pods, which, as with
    ``kubectl drain --ignore-daemonsets``, their controller would only recreate."""
    page = await kube.get("/api/v1/pods", {"fieldSelector": f"spec.nodeName={node}"})
    return [pod for pod in page.get("items") or [] if not _daemon_pod(pod)]


def _daemon_pod(pod: dict[str, object]) -> bool:
    meta = pod.get("metadata")
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    return any(
        isinstance(owner, dict) and owner.get("kind") == "DaemonSet" and owner.get("controller")
        for owner in owners or []
    )


async def drain(kube: KubeClient, node: str, give_up_after: float) -> int:
    """Cordon ``node`` and delete its pods gracefully; return how many were left.

    Transient API errors are retried until ``give_up_after``: a drain abandoned half
    way would leave pods Terminating and their container groups running.
    """
    deleted: set[str] = set()
    remaining: list[dict[str, object]] = []
    cordoned = False
    with anyio.move_on_after(give_up_after):
        while True:
            try:
                if not cordoned:
                    await kube.patch(
                        f"/api/v1/nodes/{node}",
                        {
                            "metadata": {"annotations": {CORDONED_BY: "salad-vk-decommission"}},
                            "spec": {"unschedulable": True},
                        },
                    )
                    cordoned = True
                remaining = await _pods_on(kube, node)
                if not remaining:
                    return 0
                for pod in remaining:
                    meta = pod.get("metadata") or {}
                    assert isinstance(meta, dict)
                    uid = str(meta.get("uid"))
                    if uid in deleted or meta.get("deletionTimestamp"):
                        continue
                    with contextlib.suppress(KubeNotFound):
                        await kube.delete(
                            api_path(
                                "/api/v1/namespaces/{namespace}/pods/{name}",
                                namespace=str(meta.get("namespace")),
                                name=str(meta.get("name")),
                            ),
                            {"preconditions": {"uid": uid}},
                        )
                    deleted.add(uid)
            except KubeNotFound:
                return 0  # the Node itself is gone already
            except KubeError as error:
                log.warning("drain: %s; retrying", error, extra={"node": node})
            await anyio.sleep(_POLL)
    return len(remaining)


async def remove_node_objects(kube: KubeClient, node: str) -> None:
    """Delete the Lease and the Node; either may already be gone."""
    for path in (
        f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}",
        f"/api/v1/nodes/{node}",
    ):
        try:
            await kube.delete(path)
        except KubeNotFound:
            continue


async def decommission(
    kube: KubeClient,
    node: str,
    policy: DecommissionPolicy,
    stop_node: Callable[[], Awaitable[None]],
    drain_timeout: float,
) -> None:
    """Retire ``node`` by ``policy``; ``stop_node`` cancels its task and waits for it."""
    log.info("decommissioning node (policy %s)", policy.value, extra={"node": node})
    if policy == DecommissionPolicy.DRAIN:
        left = await drain(kube, node, drain_timeout)
        if left:
            log.warning(
                "%d pods still on the node after %.0fs; removing it anyway",
                left,
                drain_timeout,
                extra={"node": node},
            )
    await stop_node()
    if policy in (DecommissionPolicy.DRAIN, DecommissionPolicy.ORPHAN):
        for attempt in range(5):
            try:
                await remove_node_objects(kube, node)
                break
            except KubeError as error:
                log.warning("removing the node failed: %s", error, extra={"node": node})
                await anyio.sleep(2.0 * 2**attempt)
    log.info("node decommissioned", extra={"node": node})
