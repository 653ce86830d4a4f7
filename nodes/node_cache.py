"""The Node objects as the API server has them, for every node of the process at once.

A node's reporter must compare what it wants with the server's Node, not with what it
last wrote: the node lifecycle controller rewrites Ready to Unknown (and taints the
node) when a lease lapses, and nothing we wrote says so. The kubelet reads its Node
from an informer; a thousand virtual nodes share one here, one watch for the process,
so checking every lease interval costs no request at all.

The watch retries within a couple of seconds after a drop, since a repair waits on it,
and each node is told when its own Node changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .informer import Informer
from .kube import KubeClient

JSON = dict[str, Any]

NODE_SELECTOR = "salad.com/project"
"""Every salad-vk Node carries this label (``node_labels``); other nodes are not cached."""


class NodeCache:
    def __init__(
        self, kube: KubeClient, *, label_selector: str = NODE_SELECTOR, field_selector: str = ""
    ) -> None:
        params = {"labelSelector": label_selector}
        if field_selector:
            params["fieldSelector"] = field_selector
        self._subscribers: dict[str, list[Callable[[], None]]] = {}
        # A thousand Nodes are megabytes of JSON, decoded on the event loop: in pages of
        # a hundred the loop gets a turn between pages (in one page of 500, a relist
        # stopped it for 2.3 s), and the whole list is read again every half hour, not
        # every five minutes. Between relists the watch, with bookmarks, is the cache.
        self._informer = Informer(
            kube,
            "/api/v1/nodes",
            params,
            on_change=self._changed,
            max_backoff=2.0,
            resync_interval=1800.0,
            page_size=100,
        )

    @classmethod
    def of_one(cls, kube: KubeClient, name: str) -> NodeCache:
        """A cache of the Node ``name`` alone (a node running without a supervisor)."""
        return cls(kube, field_selector=f"metadata.name={name}")

    def get(self, name: str) -> JSON | None:
        """The Node as last seen; None until the first complete list, or if it is absent."""
        if not self._informer.synced:
            return None
        return self._informer.items.get(name)

    @contextmanager
    def subscribe(self, name: str, callback: Callable[[], None]) -> Iterator[None]:
        """Call ``callback`` whenever the Node ``name`` changes, until the block ends."""
        self._subscribers.setdefault(name, []).append(callback)
        try:
            yield
        finally:
            callbacks = self._subscribers.get(name, [])
            callbacks.remove(callback)
            if not callbacks:
                self._subscribers.pop(name, None)

    def _changed(self, name: str) -> None:
        for callback in self._subscribers.get(name, ()):
            callback()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self._informer.run(task_status=task_status)
