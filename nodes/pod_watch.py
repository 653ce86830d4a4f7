"""The node's view of its pods: list + watch on ``spec.nodeName=<node>``.

The cache is replaced only by a *complete* list, atomically, and ``synced`` says
whether it reflects one. That flag is what the orphan collector keys on: an empty or
partial cache (start-up, a watch error, a relist in progress) must never look like
"no pods", or the collector would delete live workloads.

Disconnects resume the watch from the last resourceVersion seen (bookmarks keep it
fresh); a 410 Gone means that version is compacted away and forces a relist; and a
periodic full relist is the safety net for anything a watch could have missed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .kube import KubeClient, KubeError, KubeGone

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def pod_key(pod: JSON) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


class PodWatch:
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
        self._kube = kube
        self._node = node_name
        self._on_change = on_change
        self._resync_interval = resync_interval
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self.pods: dict[str, JSON] = {}
        self.synced = False
        """True while ``pods`` reflects a complete list plus the watch events since."""
        self.lists = 0
        """Complete lists so far; the collector waits for one after it starts."""
        self._log_extra = {"node": node_name}

    @property
    def _selector(self) -> dict[str, str]:
        return {"fieldSelector": f"spec.nodeName={self._node}"}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List, then watch forever; signal ``task_status`` after the first complete list."""
        started = False
        backoff = 0.5
        while True:
            try:
                version = await self._relist()
            except KubeError as error:
                self.synced = False
                log.warning("pod list failed: %s", error, extra=self._log_extra)
                await anyio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            if not started:
                task_status.started()
                started = True
            await self._watch_until_resync(version)

    async def _relist(self) -> str:
        fresh: dict[str, JSON] = {}
        params = {**self._selector, "limit": str(self._page_size)}
        version = ""
        while True:
            page = await self._kube.get("/api/v1/pods", params)
            for pod in page.get("items") or []:
                fresh[pod_key(pod)] = pod
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = meta.get("continue")
            if not token:
                break
            params = {**self._selector, "limit": str(self._page_size), "continue": str(token)}
        self.pods = fresh
        self.synced = True
        self.lists += 1
        self._on_change()
        return version

    async def _watch_until_resync(self, version: str) -> None:
        """Watch from ``version`` until the resync deadline, resuming after drops."""
        deadline = time.monotonic() + self._resync_interval
        backoff = 0.2
        while time.monotonic() < deadline:
            remaining = max(1, int(min(self._watch_timeout, deadline - time.monotonic())))
            params = {
                **self._selector,
                "resourceVersion": version,
                "allowWatchBookmarks": "true",
            }
            try:
                async with aclosing(self._kube.watch("/api/v1/pods", params, remaining)) as events:
                    async for kind, obj in events:
                        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                        self._apply(kind, obj)
                backoff = 0.2
            except KubeGone:
                log.info("pod watch expired (410 Gone); listing again", extra=self._log_extra)
                return
            except KubeError as error:
                log.warning("pod watch dropped: %s; resuming", error, extra=self._log_extra)
                await anyio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
                backoff = min(backoff * 2, 10.0)

    def _apply(self, kind: str, pod: JSON) -> None:
        if kind == "BOOKMARK":
            return
        key = pod_key(pod)
        if kind == "DELETED":
            self.pods.pop(key, None)
        elif kind in ("ADDED", "MODIFIED"):
            self.pods[key] = pod
        else:
            return
        self._on_change()
