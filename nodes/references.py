"""Fetching the Secrets and ConfigMaps a pod references, and nothing else.

No cluster-wide Secret informer: it would hold every Secret of the cluster in memory
and need list/watch on all of them. Each object a pod names is read with one GET
(RBAC can be as narrow as ``get``), and kept for a few seconds so a burst of replicas
of one Deployment costs one read, not a hundred.

Names arrive checked (``nodes.translate.references``) and are escaped into the path
all the same; what comes back must be the object asked for, in the namespace asked
for, or it is not used: the node reads with rights far wider than the pod's.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .kube import KubeClient, KubeError, KubeNotFound, api_path

Kind = Literal["secrets", "configmaps"]

_TTL_SECONDS = 10.0


@dataclass(frozen=True)
class StoredObject:
    data: Mapping[str, str] = field(repr=False)
    """Decoded values; left out of ``repr`` so that a logged object leaks nothing."""
    type: str = ""
    """A Secret's ``type`` (``Opaque``, ``kubernetes.io/service-account-token``, ...)."""


class ReferenceReader:
    def __init__(self, kube: KubeClient, ttl: float = _TTL_SECONDS) -> None:
        self._kube = kube
        self._ttl = ttl
        self._cache: dict[tuple[Kind, str, str], tuple[float, StoredObject | None]] = {}
        self._labels: dict[str, tuple[float, dict[str, str] | None]] = {}

    async def read(
        self, kind: Kind, namespace: str, names: Iterable[str]
    ) -> dict[str, StoredObject]:
        """Each named object that exists, its data decoded; missing ones are absent."""
        found: dict[str, StoredObject] = {}
        for name in sorted(set(names)):
            stored = await self._one(kind, namespace, name)
            if stored is not None:
                found[name] = stored
        return found

    async def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        """The labels of ``namespace``; None if it does not exist."""
        now = time.monotonic()
        cached = self._labels.get(namespace)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            obj = await self._kube.get(api_path("/api/v1/namespaces/{name}", name=namespace))
        except KubeNotFound:
            labels = None
        else:
            labels = {
                str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()
            }
        self._labels[namespace] = (now, labels)
        if len(self._labels) > 2048:
            self._labels = {k: v for k, v in self._labels.items() if now - v[0] < self._ttl}
        return labels

    async def _one(self, kind: Kind, namespace: str, name: str) -> StoredObject | None:
        key = (kind, namespace, name)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        path = api_path(
            "/api/v1/namespaces/{namespace}/{kind}/{name}",
            namespace=namespace,
            kind=kind,
            name=name,
        )
        try:
            obj = await self._kube.get(path)
        except KubeNotFound:
            data = None
        else:
            _check_identity(obj, kind, namespace, name, path)
            data = (
                StoredObject(_decode(obj), str(obj.get("type") or ""))
                if kind == "secrets"
                else StoredObject(_plain(obj))
            )
        self._cache[key] = (now, data)
        if len(self._cache) > 2048:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self._ttl}
        return data


_KINDS = {"secrets": "Secret", "configmaps": "ConfigMap"}


def _check_identity(
    obj: Mapping[str, Any], kind: Kind, namespace: str, name: str, path: str
) -> None:
    meta = obj.get("metadata") or {}
    got = (obj.get("kind"), meta.get("namespace"), meta.get("name"))
    if got != (_KINDS[kind], namespace, name):
        raise KubeError(
            0,
            "UnexpectedObject",
            f"asked for {_KINDS[kind]} {namespace}/{name}, got {got[0]} {got[1]}/{got[2]}",
            "GET",
            path,
        )


def _plain(config_map: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (config_map.get("data") or {}).items()}


def _decode(secret: Mapping[str, Any]) -> dict[str, str]:
    # The API server answers with base64 `data` only (`stringData` is write-only).
    decoded: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            decoded[str(key)] = base64.b64decode(str(value)).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            continue
    return decoded
