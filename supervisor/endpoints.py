"""``/metrics``, ``/healthz`` and ``/readyz`` on one port, plus the event-loop lag probe.

Every node shares the one event loop, so its responsiveness is the process's health:
a timer that should fire every 0.25 s measures how late it fires (a histogram for
dashboards), and ``/healthz`` fails when the loop stopped keeping time.
``/readyz`` is "a member of the replica set in good standing, and every node this
replica should serve is registered and renewing its lease", the condition under which
the Helm chart's Service and rollouts should count us ready. A standby (a live member
with no node of its own) is ready: a rolling update may then move on to the next pod.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Mapping

import anyio
import anyio.lowlevel
from aiohttp import web
from anyio.abc import TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from config import parse_listen_address

from . import heap
from .errors import CliError
from .metrics import ProcessMetrics

_TICK = 0.25
_STALE_AFTER = 5.0


class LoopLag:
    """Measures event-loop lag; ``responsive`` is what /healthz answers."""

    def __init__(self, metrics: ProcessMetrics | None = None) -> None:
        self._metrics = metrics
        self.last_tick = time.monotonic()
        self.last_lag = 0.0

    @property
    def responsive(self) -> bool:
        return time.monotonic() - self.last_tick < _STALE_AFTER and self.last_lag < _STALE_AFTER

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            await anyio.sleep(_TICK)
            self.last_tick = time.monotonic()
            self.last_lag = max(0.0, self.last_tick - before - _TICK)
            if self._metrics is not None:
                self._metrics.event_loop_lag.observe(self.last_lag)


_LINES_PER_TURN = 1000
"""Samples of the /metrics page rendered between two turns of the event loop: about
10 ms of CPU."""

_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")
"""Samples the text format moves into families of their own, after the family's other
lines: a family that has them is rendered in one piece."""


class _Family(Collector):
    """Collected metric families as a collector of their own: what prometheus_client
    renders alone."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> list[Metric]:
        return [self._family]


async def render(registry: CollectorRegistry) -> bytes:
    """``_render_slices`` with the collector paused (``heap.collections_paused``): the
    render's samples, freed before collections resume, do not set one off."""
    with heap.collections_paused():
        return await _render_slices(registry)


async def _render_slices(registry: CollectorRegistry) -> bytes:
    """The page ``generate_latest(registry)`` renders, in slices of a thousand samples
    with a turn of the event loop between them.

    At a thousand nodes the page is about 20,000 lines and a few tenths of a second of
    CPU. In one go on the loop that stalls every node at each scrape; on a worker thread
    it is worse than it looks: the loop thread gives the interpreter lock up at every
    socket call and then waits for the renderer to hand it back, up to the switch
    interval (5 ms) each time, and the loop's long turns were those a render overlapped
    (``docs/benchmarks.md``). Rendered a family at a time the largest family (a series
    per node and verb) is still one long turn, so families are sliced: every slice is
    rendered as a family of its own, and all but the first lose the two header lines
    (``# HELP``, ``# TYPE``) that prometheus_client writes first.
    """
    pieces: list[bytes] = []
    for family in registry.collect():
        samples = family.samples
        whole = any(sample.name.endswith(_OPENMETRICS_ONLY) for sample in samples)
        step = max(len(samples), 1) if whole else _LINES_PER_TURN
        # At least one slice: a family with no samples still has its header lines.
        for start in range(0, max(len(samples), 1), step):
            part = copy.copy(family)
            part.samples = samples[start : start + step]
            text = generate_latest(_Family(part))
            pieces.append(text if start == 0 else text.split(b"\n", 2)[2])
            await anyio.lowlevel.checkpoint()
    return b"".join(pieces)


class Endpoints:
    def __init__(
        self,
        registry: CollectorRegistry,
        lag: LoopLag,
        readiness: Callable[[], Mapping[str, bool]],
        membership: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._registry = registry
        self._lag = lag
        self._readiness = readiness
        self._membership = membership
        """Why this replica is not a member in good standing; None when it is."""
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _metrics(self, _: web.Request) -> web.Response:
        body = await render(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        if self._lag.responsive:
            return web.Response(text="ok\n")
        return web.Response(status=503, text=f"event loop lagging: {self._lag.last_lag:.1f}s\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        problem = self._membership()
        if problem is not None:
            return web.Response(status=503, text=f"not ready: {problem}\n")
        nodes = self._readiness()
        waiting = sorted(name for name, ready in nodes.items() if not ready)
        if waiting:
            return web.Response(status=503, text="not ready: " + ", ".join(waiting) + "\n")
        return web.Response(text=f"ok: {len(nodes)} nodes ready\n")

    async def serve(
        self, address: str, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on ``address`` (``host:port``; port 0 picks one) until cancelled."""
        host, port = parse_listen_address(address)
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                why = os.strerror(exc.errno) if exc.errno else str(exc)
                raise CliError(
                    f"cannot listen on {address} (--metrics-address) for /metrics, /healthz and"
                    f" /readyz: {why}: choose another HOST:PORT"
                ) from None
            sockets = getattr(site._server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1]) if sockets else port
            task_status.started(self.port)
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
