"""``salad-vk run``: serve every node of a projects file until SIGTERM or SIGINT.

Shutdown stops taking work and stops renewing leases; SaladCloud mutations already
sent get up to ``--shutdown-grace-seconds`` to finish, so their outcome is known.
Nothing is deleted because the process stops: the next start adopts every group.
The process is gone within the grace plus a few seconds, however loaded its event
loop is (``shutdown.StopSignals``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import anyio

from config import ConfigError, ProcessSettings

from . import __version__, heap
from .logs import Redactor, configure
from .shutdown import StopSignals
from .supervisor import running

log = logging.getLogger("supervisor")

_EXIT_MARGIN = 3.0
"""Seconds past the shutdown grace for unwinding and closing pools; then the process
exits anyway. Less than the 5 s promised: at 2,000 nodes, tearing down the process
itself (2 GiB, thousands of sockets) took 1.4 s after the deadline fired."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="serve every node of a projects file",
        description="Run one virtual Kubernetes node per SaladCloud project listed in the "
        "projects file; the file is re-read when it changes. Every flag can also be set "
        "by the environment variable shown with it.",
    )
    ProcessSettings.add_arguments(parser)
    parser.set_defaults(handler=run)


async def serve(settings: ProcessSettings, redactor: Redactor) -> None:
    """Run the supervisor until SIGTERM or SIGINT."""
    node_ip = os.environ.get("POD_IP", "127.0.0.1")
    heap.tune()
    with StopSignals(settings.shutdown_grace_seconds + _EXIT_MARGIN) as stop, stop.scope:
        async with running(settings, redactor=redactor, node_ip=node_ip) as supervisor:
            log.info(
                "salad-vk %s serving %d nodes; metrics on port %s",
                __version__,
                len(supervisor.config.nodes if supervisor.config else ()),
                supervisor.endpoints.port,
            )

            async def every_node_serving() -> None:
                for slot in list(supervisor.slots.values()):
                    await slot.serving.wait()

            await heap.freeze_when_settled(every_node_serving)
            await anyio.sleep_forever()


def run(args: argparse.Namespace) -> int:
    try:
        settings = ProcessSettings.from_namespace(args, os.environ)
    except ConfigError as error:
        print(f"salad-vk: {error}", file=sys.stderr)
        return 1
    redactor = configure(settings.log_level, settings.log_format)
    try:
        anyio.run(serve, settings, redactor)
    except (ConfigError, BaseExceptionGroup) as error:
        problems = _config_errors(error)
        if not problems:
            raise
        for problem in problems:
            log.error("cannot start:\n%s", problem)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _config_errors(error: BaseException) -> list[ConfigError]:
    """The ConfigErrors in ``error``, however deep task groups wrapped them."""
    if isinstance(error, ConfigError):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        return [found for inner in error.exceptions for found in _config_errors(inner)]
    return []
