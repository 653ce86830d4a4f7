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
from nodes.kube import KubeClient, KubeConflict, KubeError, KubeNotFound, api_path
from nodes.lease import holder_of, lease_path
from nodes.owed_deletions import ANNOTATION as OWED_ANNOTATION
from nodes.pod_decisions import has_run
from nodes.settings import CORDONED_BY

log = logging.getLogger(__name__)

_POLL = 2.0
_LEASE_DELETE_ATTEMPTS = 5


async def _all_pods_on(kube: KubeClient, node: str) -> list[dict[str, object]]:
    page = await kube.get("/api/v1/pods", {"fieldSelector": f"spec.nodeName={node}"})
    return list(page.get("items") or [])


def _daemon_pod(pod: dict[str, object]) -> bool:
    meta = pod.get("metadata")
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    return any(
        isinstance(owner, dict) and owner.get("kind") == "DaemonSet" and owner.get("controller")
        for owner in owners or []
    )


def _cordoned(found: dict[str, object]) -> bool:
    meta = found.get("metadata")
    spec = found.get("spec")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return (
        isinstance(annotations, dict)
        and bool(annotations.get(CORDONED_BY))
        and isinstance(spec, dict)
        and bool(spec.get("unschedulable"))
    )


async def drain(
    kube: KubeClient,
    node: str,
    give_up_after: float,
    *,
    held: Callable[[], bool] = lambda: True,
    writable: Callable[[], bool] = lambda: True,
) -> int:
    """Cordon ``node``, delete its pods gracefully; return how many were left.

    First every pod but DaemonSet pods, as ``kubectl drain --ignore-daemonsets`` does
    (their controller would only put them back). Then the DaemonSet pods that ran: their
    container groups bill like any other, and the node, cordoned by salad-vk, creates
    no group for the replacements their controller makes, so this ends. Last, the
    deletions the node still owes (its Node's ``salad.com/owed-deletions``) are waited
    for: deleting the Node would forget them.

    The cordon is checked on every pass and put back if it went: a node that
    registers again meanwhile (restarted in its slot, say) lifts it, and would then
    take new pods. ``held`` says whether this process still holds the node; once it
    does not, the drain stops (``NoLongerHeld``): the node is another replica's now.
    While not ``writable`` (membership lapsed: the node may be taken over), it waits.

    Transient API errors are retried until ``give_up_after``: a drain abandoned half
    way would leave pods Terminating and their container groups running.
    """
    deleted: set[str] = set()
    remaining: list[dict[str, object]] = []
    listed = False
    failure: KubeError | None = None
    with anyio.move_on_after(give_up_after):
        while True:
            if not held():
                raise NoLongerHeld(f"node {node} is no longer held here")
            if not writable():
                await anyio.sleep(_POLL)
                continue
            try:
                found = await kube.get(f"/api/v1/nodes/{node}")
                if not _cordoned(found):
                    found = await kube.patch(
                        f"/api/v1/nodes/{node}",
                        {
                            "metadata": {"annotations": {CORDONED_BY: "salad-vk-decommission"}},
                            "spec": {"unschedulable": True},
                        },
                    )
                pods = await _all_pods_on(kube, node)
                listed = True
                remaining = [p for p in pods if not _daemon_pod(p)] or [
                    p for p in pods if has_run(p)
                ]
                if remaining:
                    await _delete_each(kube, remaining, deleted)
                # Read after the list: a pod gone just before it may have left a debt.
                elif not _owes_deletions(await kube.get(f"/api/v1/nodes/{node}")):
                    return 0
            except KubeNotFound:
                return 0  # the Node itself is gone already
            except KubeError as error:
                failure = error
                log.warning("drain: %s; retrying", error, extra={"node": node})
            await anyio.sleep(_POLL)
    if not listed:
        # Nothing is known about the node's pods: never report that as "none left".
        raise DrainFailed(f"could not drain node {node}: {failure or 'no answer'}")
    return len(remaining)


class DrainFailed(Exception):
    """The drain could not even cordon the node and list its pods before its time ran out."""


class NoLongerHeld(Exception):
    """The node's Lease, or this replica's membership, was lost during the drain."""


async def _delete_each(kube: KubeClient, pods: list[dict[str, object]], deleted: set[str]) -> None:
    """Delete each pod once (this incarnation only), gracefully."""
    for pod in pods:
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


def _owes_deletions(found: dict[str, object]) -> bool:
    meta = found.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(annotations, dict) and bool(annotations.get(OWED_ANNOTATION))


async def remove_node_objects(kube: KubeClient, node: str, holder: str | None = None) -> bool:
    """Delete the Lease and the Node; either may already be gone. With ``holder``,
    only if the Lease is released or held by ``holder``, and only that version of it
    (a replica that claims it meanwhile keeps it, and the Node with it); False then."""
    for _ in range(_LEASE_DELETE_ATTEMPTS):
        try:
            lease = await kube.get(lease_path(node))
        except KubeNotFound:
            break
        if holder is not None and holder_of(lease) not in ("", holder):
            return False
        version = (lease.get("metadata") or {}).get("resourceVersion")
        try:
            await kube.delete(
                lease_path(node),
                {"preconditions": {"resourceVersion": version}} if holder is not None else None,
            )
        except KubeConflict:
            continue  # written meanwhile (a last renewal, a release): look again
        except KubeNotFound:
            pass
        break
    else:
        raise KubeError(409, "Conflict", "the Lease kept changing", "DELETE", lease_path(node))
    with contextlib.suppress(KubeNotFound):
        await kube.delete(f"/api/v1/nodes/{node}")
    return True


async def decommission(
    kube: KubeClient,
    node: str,
    policy: DecommissionPolicy,
    stop_node: Callable[[], Awaitable[None]],
    drain_timeout: float,
    *,
    held: Callable[[], bool] = lambda: True,
    writable: Callable[[], bool] = lambda: True,
    holder: str | None = None,
) -> bool:
    """Retire ``node`` by ``policy``; ``stop_node`` cancels its task and waits for it.
    ``held``, ``writable`` and ``holder`` keep a replica that lost the node from
    removing it (see ``drain``): False if it was left to another holder."""
    log.info("decommissioning node (policy %s)", policy.value, extra={"node": node})
    if policy == DecommissionPolicy.DRAIN:
        try:
            left = await drain(kube, node, drain_timeout, held=held, writable=writable)
        except NoLongerHeld:
            log.info("node no longer held here: its removal is left to its holder")
            await stop_node()
            return False
        except DrainFailed as error:
            log.warning("%s; removing it anyway", error, extra={"node": node})
            left = 0
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
                if not await remove_node_objects(kube, node, holder):
                    log.info("node held by another replica now: its Node and Lease stay")
                    return False
                break
            except KubeError as error:
                log.warning("removing the node failed: %s", error, extra={"node": node})
                await anyio.sleep(2.0 * 2**attempt)
    log.info("node decommissioned", extra={"node": node})
    return True
