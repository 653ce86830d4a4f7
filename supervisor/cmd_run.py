"""``salad-vk run``: serve the nodes of a projects file until SIGTERM or SIGINT.

Several ``run`` processes (replicas) share the nodes of one file (``--identity`` names
each, ``--lease-namespace`` is where they meet). Shutdown is a handoff of everything:
the replica leaves the replica set, sends nothing new, lets SaladCloud mutations
already sent finish (up to ``--shutdown-grace-seconds``) so their outcome is known,
then releases every node's Lease so that the other replicas take them at once.
Nothing is deleted because a process stops: whoever serves a node next adopts every
group.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import anyio

from config import ConfigError, ProcessSettings

from . import __version__
from .logs import Redactor, configure
from .supervisor import running

log = logging.getLogger("supervisor")


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
    async with running(settings, redactor=redactor, node_ip=node_ip) as supervisor:
        log.info(
            "salad-vk %s serving %d nodes; metrics on port %s",
            __version__,
            len(supervisor.config.nodes if supervisor.config else ()),
            supervisor.endpoints.port,
        )
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for received in signals:
                log.info("%s received: shutting down", signal.Signals(received).name)
                break


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
