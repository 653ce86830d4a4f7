"""The two writes a node makes to its pods: their status, and their final removal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .kube import KubeClient, KubeConflict, KubeError, KubeNotFound, api_path
from .status_patch import status_patch

JSON = dict[str, Any]


def _path(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return api_path(
        "/api/v1/namespaces/{namespace}/pods/{name}",
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
    )


async def write_status(
    kube: KubeClient, pod: Mapping[str, Any], status: Mapping[str, Any]
) -> JSON | None:
    """Patch ``pods/<p>/status`` to ``status``; return the updated pod, or None if unchanged.

    The UID rides along in the patch, as the kubelet's does: the server rejects it if
    the name now belongs to a newer pod, so one pod's status can never land on its
    successor (StatefulSets reuse names).
    """
    patch = status_patch(pod.get("status") or {}, status)
    if patch is None:
        return None
    uid = (pod.get("metadata") or {}).get("uid")
    try:
        return await kube.patch(f"{_path(pod)}/status", {"metadata": {"uid": uid}, "status": patch})
    except (KubeNotFound, KubeConflict):
        return None
    except KubeError as error:
        # A UID that no longer matches comes back as 422 "field is immutable": the
        # name belongs to a newer pod now, and this status was never its business.
        if error.status == 422 and "uid" in error.message.lower():
            return None
        raise


async def remove(kube: KubeClient, pod: Mapping[str, Any]) -> None:
    """Delete the pod object at once (its workload is already gone), this incarnation only."""
    uid = (pod.get("metadata") or {}).get("uid")
    try:
        await kube.delete(
            _path(pod),
            {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": uid},
            },
        )
    except (KubeNotFound, KubeConflict):
        # Gone already, or the name belongs to a newer pod: nothing of ours to delete.
        return
