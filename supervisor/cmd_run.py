"""``salad-vk run``: serve the nodes of a projects file until SIGTERM or SIGINT.

Start-up checks what the user can fix before it touches anything: the settings, then
the projects file (every problem at once), then where the cluster configuration comes
from (one line naming the file and the fix). Only then is a Kubernetes client built.

Several ``run`` processes (replicas) share the nodes of one file (``--identity`` names
each, ``--lease-namespace`` is where they meet). Shutdown is a handoff of everything:
the replica leaves the replica set, sends nothing new, lets SaladCloud mutations
already sent finish (up to ``--shutdown-grace-seconds``) so their outcome is known,
then releases every node's Lease so that the other replicas take them at once.
Nothing is deleted because a process stops: whoever serves a node next adopts every
group. The process is gone within the grace plus a few seconds, however loaded its
event loop is (``shutdown.StopSignals``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Mapping

import anyio
import prometheus_client

from config import ConfigError, ProcessSettings, load_projects

from . import __version__, heap
from .kubeconfig import KubeSource, api_client, resolve_kube_source
from .logs import Redactor, configure
from .shutdown import StopSignals
from .supervisor import Supervisor, running

log = logging.getLogger("supervisor")

_WAITING_SAID_EVERY = 30.0
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
        "by the environment variable shown with it. The cluster is the one of --kubeconfig, "
        "else KUBECONFIG, else ~/.kube/config, else the pod's service account.",
    )
    ProcessSettings.add_arguments(parser)
    parser.set_defaults(handler=run)


def kubeconfig_origin(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """Which of the flag and its variable named the kubeconfig, for messages."""
    if getattr(args, "kubeconfig", None) is None and environ.get(
        ProcessSettings.env_var("kubeconfig")
    ):
        return ProcessSettings.env_var("kubeconfig")
    return "--kubeconfig"


async def serve(settings: ProcessSettings, source: KubeSource, redactor: Redactor) -> None:
    """Run the supervisor until SIGTERM or SIGINT."""
    node_ip = os.environ.get("POD_IP", "127.0.0.1")
    heap.tune()
    # A ``_created`` line beside every counter and histogram of every node: 10,000 lines
    # of a 1,000-node page that the text format's readers do not use.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    with StopSignals(settings.shutdown_grace_seconds + _EXIT_MARGIN) as stop, stop.scope:
        kube_api = await api_client(source, settings.kube_max_connections)
        log.info("salad-vk %s: Kubernetes API from %s", __version__, source.description)
        try:
            async with (
                running(
                    settings, kube_api=kube_api, redactor=redactor, node_ip=node_ip
                ) as supervisor,
                anyio.create_task_group() as group,
            ):
                group.start_soon(announce_when_registered, supervisor)

                async def every_node_serving() -> None:
                    for slot in list(supervisor.slots.values()):
                        await slot.serving.wait()

                await heap.keep_frozen(every_node_serving)
        finally:
            with anyio.CancelScope(shield=True):
                await kube_api.close()


async def announce_when_registered(supervisor: Supervisor) -> None:
    """Say "serving N nodes" once every configured node is registered and serving, not
    before; while some are not, say which, every 30 s."""
    waited = 0.0
    while True:
        configured = supervisor.config.nodes if supervisor.config else ()
        waiting = [
            node.name
            for node in configured
            if node.name not in supervisor.slots or not supervisor.slots[node.name].serving.is_set()
        ]
        if not waiting:
            log.info(
                "salad-vk %s serving %d nodes; metrics on port %s",
                __version__,
                len(configured),
                supervisor.endpoints.port,
            )
            return
        if waited >= _WAITING_SAID_EVERY:
            waited = 0.0
            more = f" and {len(waiting) - 5} more" if waiting[5:] else ""
            log.info(
                "%d of %d nodes registered; waiting for %s",
                len(configured) - len(waiting),
                len(configured),
                ", ".join(waiting[:5]) + more,
            )
        await anyio.sleep(0.5)
        waited += 0.5


def run(args: argparse.Namespace) -> int:
    try:
        settings = ProcessSettings.from_namespace(args, os.environ)
    except ConfigError as error:
        print(f"salad-vk run: {error}", file=sys.stderr)
        return 1
    # The projects file before the cluster: its problems are the user's to fix, every
    # one at once. A missing key is not one: that node runs without its key.
    try:
        load_projects(settings.config, os.environ, allow_missing_keys=True)
    except ConfigError as error:
        print(error, file=sys.stderr)
        count = len(error.errors)
        print(
            f"salad-vk run: {count} problem{'s' if count != 1 else ''} in {settings.config};"
            " nothing started (salad-vk check-config FILE checks a file)",
            file=sys.stderr,
        )
        return 1
    source = resolve_kube_source(
        settings.kubeconfig, os.environ, flag_origin=kubeconfig_origin(args, os.environ)
    )
    redactor = configure(settings.log_level, settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve, settings, source, redactor)
    return 0
