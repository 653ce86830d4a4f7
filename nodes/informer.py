"""A list + watch of one kind of object, kept as a cache: what client-go calls an informer.

The cache is replaced only by a *complete* list, atomically, and ``synced`` says
whether it reflects one. That flag is what the orphan collector keys on: an empty or
partial cache (start-up, a watch error, a relist in progress) must never look like
"no pods", or the collector would delete live workloads.

Disconnects resume the watch from the last resourceVersion seen; a 410 Gone means
that version is compacted away and forces a relist; a periodic full relist is the
safety net for anything a watch could have missed.

A dead connection must be noticed in seconds, not after the watch's own timeout: the
watch asks for bookmarks, which the API server sends about once a minute even when
nothing changes, so a connection that stays silent for longer than ``silence_timeout``
is taken for dead and the watch resumes on a new one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import aclosing
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .kube import KubeClient, KubeError, KubeGone

log = logging.getLogger(__name__)

JSON = dict[str, Any]

SILENCE_TIMEOUT = 90.0
"""Seconds without a byte (event or bookmark) after which a watch is taken for dead."""


def object_name(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("name"))


class Informer:
    """Keeps ``items`` (key -> object JSON) in step with the API server."""

    def __init__(
        self,
        kube: KubeClient,
        path: str,
        params: Mapping[str, str],
        *,
        key: Callable[[JSON], str] = object_name,
        on_change: Callable[[str], None] = lambda key: None,
        resync_interval: float = 300.0,
        watch_timeout: int = 290,
        silence_timeout: float = SILENCE_TIMEOUT,
        max_backoff: float = 10.0,
        page_size: int = 500,
        log_extra: Mapping[str, str] | None = None,
    ) -> None:
        self._kube = kube
        self._path = path
        self._params = dict(params)
        self._key = key
        self._on_change = on_change
        self._resync_interval = resync_interval
        self._watch_timeout = watch_timeout
        self._silence_timeout = silence_timeout
        self._max_backoff = max_backoff
        self._page_size = page_size
        self._log_extra = dict(log_extra or {})
        self.items: dict[str, JSON] = {}
        self.synced = False
        """True while ``items`` reflects a complete list plus the watch events since."""
        self.lists = 0
        """Complete lists so far."""

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List, then watch forever; signal ``task_status`` after the first complete list."""
        started = False
        backoff = 0.5
        while True:
            try:
                version = await self._relist()
            except Exception as error:  # the cache's owner must never die of a list
                self.synced = False
                if isinstance(error, KubeError):
                    log.warning("list %s failed: %s", self._path, error, extra=self._log_extra)
                else:
                    log.exception("list %s failed unexpectedly", self._path, extra=self._log_extra)
                await anyio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
                backoff = min(backoff * 2, max(self._max_backoff, 0.5))
                continue
            backoff = 0.5
            if not started:
                task_status.started()
                started = True
            await self._watch_until_resync(version)

    async def _relist(self) -> str:
        fresh: dict[str, JSON] = {}
        params = {**self._params, "limit": str(self._page_size)}
        version = ""
        while True:
            page = await self._kube.get(self._path, params)
            for item in page.get("items") or []:
                fresh[self._key(item)] = item
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            token = meta.get("continue")
            if not token:
                break
            params = {**self._params, "limit": str(self._page_size), "continue": str(token)}
        changed = {k for k in fresh.keys() | self.items.keys() if fresh.get(k) != self.items.get(k)}
        self.items = fresh
        self.synced = True
        self.lists += 1
        for key in sorted(changed):
            self._on_change(key)
        return version

    async def _watch_until_resync(self, version: str) -> None:
        """Watch from ``version`` until the resync deadline, resuming after drops."""
        deadline = time.monotonic() + self._resync_interval
        backoff = 0.2
        while time.monotonic() < deadline:
            remaining = max(1, int(min(self._watch_timeout, deadline - time.monotonic())))
            params = {**self._params, "resourceVersion": version, "allowWatchBookmarks": "true"}
            try:
                events = self._kube.watch(
                    self._path, params, remaining, silence_timeout=self._silence_timeout
                )
                async with aclosing(events):
                    async for kind, obj in events:
                        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                        self._apply(kind, obj)
                backoff = 0.2
            except KubeGone:
                log.info(
                    "watch of %s expired (410 Gone); listing again",
                    self._path,
                    extra=self._log_extra,
                )
                return
            except KubeError as error:
                log.warning(
                    "watch of %s dropped: %s; resuming", self._path, error, extra=self._log_extra
                )
                await anyio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
                backoff = min(backoff * 2, self._max_backoff)
            except Exception:  # what nobody foresaw: list again, from scratch
                log.exception(
                    "watch of %s failed unexpectedly; listing again",
                    self._path,
                    extra=self._log_extra,
                )
                await anyio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
                return

    def _apply(self, kind: str, obj: JSON) -> None:
        if kind == "BOOKMARK":
            return
        key = self._key(obj)
        if kind == "DELETED":
            self.items.pop(key, None)
        elif kind in ("ADDED", "MODIFIED"):
            self.items[key] = obj
        else:
            return
        self._on_change(key)
