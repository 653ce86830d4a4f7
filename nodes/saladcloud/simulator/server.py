"""Starting and stopping a simulator: in-process for tests, or as ``salad-vk simulate``."""

from __future__ import annotations

import errno
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import anyio
from aiohttp import web

from .app import API_PREFIX, WORLD, add_api_routes, api_gate
from .clock import SimClock
from .control import CONTROL_PREFIX, SimulatorControl, add_control_routes, control_problems
from .options import SimulatorOptions
from .world import World

log = logging.getLogger("nodes.saladcloud.simulator")


class ListenError(Exception):
    """The simulator could not open its listening socket; the message says why."""


class Simulator(SimulatorControl):
    """A running simulator: where to reach it, and its run-time controls."""

    def __init__(self, world: World, host: str, port: int) -> None:
        super().__init__(world)
        self.host = host
        self.port = port
        authority = f"[{host}]" if ":" in host else host
        self.root_url = f"http://{authority}:{port}"
        self.url = self.root_url + API_PREFIX
        """The base URL a client uses, ending in ``/api/public``."""
        self.control_url = self.root_url + CONTROL_PREFIX


def build_world(
    options: SimulatorOptions,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    epoch: datetime | None = None,
) -> World:
    clock = SimClock(options.time_scale, monotonic=monotonic, epoch=epoch)
    return World(options, clock=clock, wall=monotonic)


def build_app(world: World) -> web.Application:
    app = web.Application(middlewares=[api_gate, control_problems])
    app[WORLD] = world
    add_api_routes(app)
    add_control_routes(app)
    return app


@asynccontextmanager
async def running_simulator(
    options: SimulatorOptions | None = None,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    epoch: datetime | None = None,
) -> AsyncIterator[Simulator]:
    """Serve a simulator on ``options.listen`` until the block ends.

    ``monotonic`` is the wall clock of the rate limit and of simulated time; a test
    may pass a faster one. Without options, it listens on a free loopback port.
    """
    if options is None:
        options = SimulatorOptions(listen="127.0.0.1:0")
    world = build_world(options, monotonic=monotonic, epoch=epoch)
    runner = web.AppRunner(build_app(world), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        host, port = options.host_port
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ListenError(f"cannot listen on {options.listen}: {reason}") from None
        bound = runner.addresses[0]
        yield Simulator(world, host, int(bound[1]))
    finally:
        await runner.cleanup()


async def serve(options: SimulatorOptions, *, announce: Callable[[Simulator], None]) -> None:
    """Run until SIGINT or SIGTERM (the ``salad-vk simulate`` command)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with running_simulator(options) as simulator:
            announce(simulator)
            async for received in signals:
                log.info("stopping on %s", signal.Signals(received).name)
                return
