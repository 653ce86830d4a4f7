"""The node's view of its pods: an informer on ``spec.nodeName=<node>``.

``synced`` and ``lists`` are what the orphan collector keys on (see ``Informer``): an
empty or partial cache must never look like "no pods".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .informer import Informer
from .kube import KubeClient

JSON = dict[str, Any]


def pod_key(pod: JSON) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class PodWatch(Informer):
    """Keeps ``pods`` (key ``namespace/name`` -> pod JSON) in step with the API server."""

    def __init__(
        self,
        kube: KubeClient,
        node_name: str,
        *,
        on_change: Callable[[], None],
        resync_interval: float = 300.0,
        watch_timeout: int = 290,
        page_size: int = 500,
    ) -> None:
        super().__init__(
            kube,
            "/api/v1/pods",
            {"fieldSelector": f"spec.nodeName={node_name}"},
            key=pod_key,
            on_change=lambda _key: on_change(),
            resync_interval=resync_interval,
            watch_timeout=watch_timeout,
            page_size=page_size,
            log_extra={"node": node_name},
        )

    @property
    def pods(self) -> dict[str, JSON]:
        return self.items
