"""Volumes: a SaladCloud container has none, with two exceptions a pod may still carry.

* The service-account token volume Kubernetes injects into every pod
  (``kube-api-access-*``) is ignored: SaladCloud cannot mount it, and the container
  could not reach this cluster's API server with it anyway.
* An ``emptyDir`` with ``medium: Memory`` mounted at ``/dev/shm`` is how Kubernetes
  users enlarge shared memory; it becomes the group's ``shm_size``.

Anything else is refused, naming ``spec.volumes[i]``: silently running without a
volume the pod declared would lose data or configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nodes.translate.pod_json import obj, objs, text
from nodes.translate.quantity import parse_quantity
from nodes.translate.refusal import UNSUPPORTED_POD_FEATURE, Problems

SHM_PATH = "/dev/shm"  # noqa: S108 (a mount path to recognise, not a file to write)
SERVICE_ACCOUNT_VOLUME_PREFIX = "kube-api-access-"
_TOKEN_CONFIG_MAPS = frozenset({"kube-root-ca.crt", "openshift-service-ca.crt"})


@dataclass(frozen=True)
class SharedMemory:
    """The ``/dev/shm`` emptyDir of the pod."""

    size_limit: Fraction | None
    """Bytes, from ``emptyDir.sizeLimit``; ``None`` when the volume has no limit."""
    field: str
    """Where the limit is set, for messages."""


def is_service_account_token(volume: Mapping[str, Any]) -> bool:
    """Whether ``volume`` is the projected token volume Kubernetes injects."""
    if not text(volume.get("name")).startswith(SERVICE_ACCOUNT_VOLUME_PREFIX):
        return False
    if set(volume) - {"name", "projected"}:
        return False
    sources = objs(obj(volume.get("projected")).get("sources"))
    if not any("serviceAccountToken" in source for source in sources):
        return False
    for source in sources:
        if set(source) == {"serviceAccountToken"}:
            continue
        if set(source) == {"configMap"}:
            if text(obj(source["configMap"]).get("name")) in _TOKEN_CONFIG_MAPS:
                continue
            return False
        if set(source) == {"downwardAPI"}:
            paths = {
                text(obj(item.get("fieldRef")).get("fieldPath"))
                for item in objs(obj(source["downwardAPI"]).get("items"))
            }
            if paths <= {"metadata.namespace"}:
                continue
        return False
    return True


def _mount_paths(container: Mapping[str, Any]) -> dict[str, list[str]]:
    paths: dict[str, list[str]] = {}
    for mount in objs(container.get("volumeMounts")):
        path = text(mount.get("mountPath")).rstrip("/") or "/"
        paths.setdefault(text(mount.get("name")), []).append(path)
    return paths


def check_volumes(
    spec: Mapping[str, Any], container: Mapping[str, Any], problems: Problems
) -> SharedMemory | None:
    """The pod's shared-memory volume, if any; every other volume is a problem."""
    mounts = _mount_paths(container)
    shared: SharedMemory | None = None
    for index, volume in enumerate(objs(spec.get("volumes"))):
        field = f"spec.volumes[{index}]"
        name = text(volume.get("name"))
        if is_service_account_token(volume):
            continue
        empty_dir = volume.get("emptyDir")
        paths = mounts.get(name, [])
        if (
            isinstance(empty_dir, Mapping)
            and text(empty_dir.get("medium")) == "Memory"
            and paths
            and all(path == SHM_PATH for path in paths)
            and set(volume) == {"name", "emptyDir"}
        ):
            raw_limit = empty_dir.get("sizeLimit")
            limit = None if raw_limit is None else parse_quantity(raw_limit)
            if raw_limit is not None and (limit is None or limit <= 0):
                problems.add(
                    UNSUPPORTED_POD_FEATURE,
                    f"{field}.emptyDir.sizeLimit",
                    "is not a positive quantity",
                )
                continue
            shared = SharedMemory(size_limit=limit, field=f"{field}.emptyDir.sizeLimit")
            continue
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            field,
            f"volume {name!r} cannot be given to a SaladCloud container: only an emptyDir "
            f"with medium Memory mounted at {SHM_PATH} (shared memory) and the "
            "service-account token volume Kubernetes injects are accepted",
        )
    return shared
