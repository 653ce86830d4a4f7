"""Fetching the Secrets and ConfigMaps a pod references, and nothing else.

No cluster-wide Secret informer: it would hold every Secret of the cluster in memory
and need list/watch on all of them. Each object a pod names is read with one GET
(RBAC can be as narrow as ``get``), and kept for a few seconds so a burst of replicas
of one Deployment costs one read, not a hundred.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from .kube import KubeClient, KubeNotFound

Kind = Literal["secrets", "configmaps"]

_TTL_SECONDS = 10.0


class ReferenceReader:
    def __init__(self, kube: KubeClient, ttl: float = _TTL_SECONDS) -> None:
        self._kube = kube
        self._ttl = ttl
        self._cache: dict[tuple[Kind, str, str], tuple[float, dict[str, str] | None]] = {}

    async def read(
        self, kind: Kind, namespace: str, names: Iterable[str]
    ) -> dict[str, Mapping[str, str]]:
        """The data of each named object that exists (decoded); missing ones are absent."""
        found: dict[str, Mapping[str, str]] = {}
        for name in sorted(set(names)):
            data = await self._one(kind, namespace, name)
            if data is not None:
                found[name] = data
        return found

    async def _one(self, kind: Kind, namespace: str, name: str) -> dict[str, str] | None:
        key = (kind, namespace, name)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            obj = await self._kube.get(f"/api/v1/namespaces/{namespace}/{kind}/{name}")
        except KubeNotFound:
            data = None
        else:
            data = _decode(obj) if kind == "secrets" else _plain(obj)
        self._cache[key] = (now, data)
        if len(self._cache) > 2048:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self._ttl}
        return data


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
