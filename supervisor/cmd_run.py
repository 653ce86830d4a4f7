"""``salad-vk run``: serve every node of a projects file until SIGTERM or SIGINT.

Shutdown stops taking work and stops renewing leases; SaladCloud mutations already
sent get up to ``--shutdown-grace-seconds`` to finish, so their outcome is known.
Nothing is deleted because the process stops: the next start adopts every group.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import anyio
import httpx
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.client.api_client import ApiClient

from config import ConfigError, ProcessSettings

from . import __version__
from .logs import Redactor, configure
from .supervisor import Shared, Supervisor

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


async def kube_api_client(settings: ProcessSettings) -> ApiClient:
    """The one Kubernetes client of the process: the kubeconfig given, else in-cluster."""
    configuration = Configuration()
    if settings.kubeconfig is not None:
        await kube_config.load_kube_config(
            config_file=str(settings.kubeconfig), client_configuration=configuration
        )
    else:
        kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    # 0 lets aiohttp open as many as the nodes ask for; each node bounds itself.
    configuration.connection_pool_maxsize = settings.kube_max_connections
    return ApiClient(configuration=configuration)


async def serve(settings: ProcessSettings, redactor: Redactor) -> None:
    """Build the shared pools, run the supervisor until SIGTERM/SIGINT, close the pools."""
    async with (
        await kube_api_client(settings) as kube_api,
        httpx.AsyncClient(limits=settings.http_limits(), timeout=settings.http_timeout()) as http,
    ):
        shared = Shared(kube_api=kube_api, http=http, redactor=redactor)
        supervisor = Supervisor(
            settings,
            shared,
            environ=os.environ,
            node_ip=os.environ.get("POD_IP", "127.0.0.1"),
        )
        async with anyio.create_task_group() as group:
            await group.start(supervisor.run)
            log.info(
                "salad-vk %s serving %d nodes; metrics on port %s",
                __version__,
                len(supervisor.config.nodes if supervisor.config else ()),
                supervisor.endpoints.port,
            )
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for received in signals:
                    log.info("%s received: shutting down", signal.Signals(received).name)
                    group.cancel_scope.cancel()
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
