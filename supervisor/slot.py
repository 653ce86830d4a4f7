"""One supervised node: its own cancel scope, restarts with capped jittered backoff.

A node's failure stays inside its slot: every exception is caught here, logged,
counted, and answered by a restart after a delay that doubles up to a cap (with
jitter, so nodes that failed together do not retry together) and resets once an
incarnation has run long enough to call itself healthy. Cancellation is the one
thing that passes through: it is how the supervisor stops or replaces a node.

Losing the node's Lease (``LeaseLost``) is not a failure to restart from: the node is
someone else's now, or its ownership could not be proven in time. The slot ends, and
the supervisor decides whether to claim the node again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from nodes.lease import LeaseLost

from .logs import node_context
from .metrics import ProcessMetrics

log = logging.getLogger(__name__)


class Runnable(Protocol):
    @property
    def ready(self) -> bool: ...

    async def run(self, *, task_status: TaskStatus[None] = ...) -> None: ...


class NodeSlot:
    def __init__(
        self,
        name: str,
        project: str,
        build: Callable[[], Runnable],
        *,
        metrics: ProcessMetrics | None = None,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        healthy_after: float = 60.0,
    ) -> None:
        self.name = name
        self.project = project
        self._build = build
        self._metrics = metrics
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._healthy_after = healthy_after
        self.node: Runnable | None = None
        self.restarts = 0
        self.scope = anyio.CancelScope()
        self.stopped = anyio.Event()
        self.serving = anyio.Event()
        """Set once the first incarnation has registered its node and listed its pods."""
        self.lost: LeaseLost | None = None
        """Why the slot ended by itself: its node's Lease was lost."""
        self.reclaim_after_deadline = False
        """Restart, claiming the Lease again, when ownership lapsed only because the
        Lease could not be renewed in time. For a node being decommissioned: no other
        replica lists it, so no one else would ever take it and finish the drain."""

    @property
    def ready(self) -> bool:
        return self.node is not None and self.node.ready

    def stop(self) -> None:
        self.scope.cancel()

    async def run(self) -> None:
        try:
            with self.scope, node_context(self.name, self.project):
                attempt = 0
                while True:
                    started = time.monotonic()
                    if not await self._run_once():
                        return
                    if time.monotonic() - started > self._healthy_after:
                        attempt = 0
                    delay = min(self._backoff_max, self._backoff_initial * 2**attempt)
                    delay *= random.uniform(0.5, 1.0)  # noqa: S311
                    attempt += 1
                    log.info("restarting node in %.1fs", delay)
                    await anyio.sleep(delay)
        finally:
            self.node = None
            self.stopped.set()

    async def _run_once(self) -> bool:
        """Run one incarnation until it fails (True: restart it) or loses its Lease
        (False); cancellation passes straight through."""
        try:
            self.node = node = self._build()
            async with anyio.create_task_group() as group:
                await group.start(node.run)
                self.serving.set()
        except Exception as error:
            lost = _lease_lost(error)
            if lost is not None and lost.kind == "deadline" and self.reclaim_after_deadline:
                log.warning("node stopped: %s; claiming it again to finish its removal", lost)
                return True
            if lost is not None:
                self.lost = lost
                log.warning("node stopped: %s", lost)
                return False
            log.exception("node failed")
        else:
            # A node only returns if something is wrong with it: serving is forever.
            log.error("node stopped unexpectedly")
        finally:
            self.node = None
        self.restarts += 1
        if self._metrics is not None:
            self._metrics.node_restarts.labels(node=self.name).inc()
        return True


def _lease_lost(error: BaseException) -> LeaseLost | None:
    """The ``LeaseLost`` in ``error``, however deep task groups wrapped it."""
    if isinstance(error, LeaseLost):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _lease_lost(inner)
            if found is not None:
                return found
    return None
