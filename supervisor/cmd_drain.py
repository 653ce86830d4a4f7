"""``salad-vk drain --all`` / ``drain NODE...``: empty nodes before salad-vk goes away.

Each node is cordoned and its pods deleted gracefully, exactly as the ``drain``
decommission policy does (``supervisor.decommission.drain``); then this command waits,
up to ``--timeout-seconds``, until they are gone. It deletes no container group
itself: the running supervisor does, for each pod deleted, as for any deletion. So
it is what the chart's pre-delete hook runs before ``helm uninstall`` stops the
supervisor, which would otherwise leave every group running and billed.

Only nodes of the projects file can be drained: a name that is not there may be a
real node, and this command is not ``kubectl drain``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import anyio

from config import ConfigError, ProcessSettings, load_projects
from nodes.kube import KubeClient, KubeError, KubeNotFound

from .cli_args import add_kubeconfig, add_log_level
from .cmd_run import kubeconfig_origin
from .decommission import DrainFailed, drain
from .errors import CliError
from .kubeconfig import KubeSource, api_client, resolve_kube_source
from .logs import configure

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0
_PROGRESS_EVERY = 10.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "drain",
        help="cordon nodes of the projects file and delete their pods, so their groups go",
        description="Cordon nodes of the projects file and delete their pods gracefully, then"
        " wait until they are gone. The running salad-vk deletes each pod's container group;"
        " this command deletes none itself. Exit status 0 when every node is empty, 1 when"
        " pods are left after --timeout-seconds.",
    )
    parser.add_argument(
        "nodes", nargs="*", metavar="NODE", help="nodes to drain (names from the projects file)"
    )
    parser.add_argument("--all", action="store_true", help="drain every node of the projects file")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the projects file [SALAD_VK_CONFIG; required]",
    )
    add_kubeconfig(parser, " [SALAD_VK_KUBECONFIG]")
    parser.add_argument(
        "--timeout-seconds",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the pods to be gone (default {DEFAULT_TIMEOUT:g})",
    )
    add_log_level(parser, default="warning")
    parser.set_defaults(handler=drain_command)


def drain_command(args: argparse.Namespace) -> int:
    if args.all == bool(args.nodes):
        raise CliError("name the nodes to drain, or give --all (not both)")
    if args.timeout_seconds <= 0:
        raise CliError(f"--timeout-seconds must be positive (got {args.timeout_seconds:g})")
    config_path = args.config or os.environ.get(ProcessSettings.env_var("config"))
    if not config_path:
        raise CliError("no projects file: use --config FILE or SALAD_VK_CONFIG")
    try:
        # Keys are not needed to drain (the hook's pod does not mount them).
        config = load_projects(Path(config_path), os.environ, allow_missing_keys=True)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    known = [node.name for node in config.nodes]
    unknown = [name for name in args.nodes if name not in known]
    if unknown:
        raise CliError(
            f"{', '.join(unknown)}: not in the projects file {config_path}"
            f" (its nodes: {', '.join(known) or 'none'}); only salad-vk's own nodes are drained"
        )
    names = known if args.all else list(dict.fromkeys(args.nodes))
    flag = args.kubeconfig
    if flag is None and os.environ.get(ProcessSettings.env_var("kubeconfig")):
        flag = Path(os.environ[ProcessSettings.env_var("kubeconfig")])
    source = resolve_kube_source(flag, os.environ, flag_origin=kubeconfig_origin(args, os.environ))
    configure(args.log_level)
    if not names:
        print(f"no nodes in {config_path}: nothing to drain")
        return 0
    left = anyio.run(_drain_all, source, names, args.timeout_seconds)
    if left:
        where = ", ".join(
            f"{name} ({count if count >= 0 else 'unknown: the drain failed'})"
            for name, count in left.items()
        )
        print(
            f"salad-vk drain: pods still on {where} after {args.timeout_seconds:g}s; their"
            " container groups may still be running: is salad-vk running? (kubectl get pods -A"
            f" --field-selector spec.nodeName={next(iter(left))})",
            file=sys.stderr,
        )
        return 1
    print(f"drained {len(names)} node{'s' if len(names) != 1 else ''}: no pod left")
    return 0


async def _drain_all(source: KubeSource, names: list[str], give_up_after: float) -> dict[str, int]:
    """Drain every node at once; return the pods left per node that is not empty."""
    kube_api = await api_client(source)
    left: dict[str, int] = {}
    try:
        kube = KubeClient(kube_api, node="-drain-")
        print(
            f"draining {len(names)} node{'s' if len(names) != 1 else ''} ({', '.join(names)}):"
            f" cordon, delete their pods, wait up to {give_up_after:g}s for them to be gone",
            flush=True,
        )
        for name in names:
            await _warn_if_not_served(kube, name)

        async def one(name: str) -> None:
            try:
                remaining = await drain(kube, name, give_up_after)
            except DrainFailed as error:
                print(f"  {name}: {error}", file=sys.stderr, flush=True)
                left[name] = -1
                return
            if remaining:
                left[name] = remaining
            else:
                print(f"  {name}: drained", flush=True)

        async with anyio.create_task_group() as group:
            group.start_soon(_progress, kube, names)
            async with anyio.create_task_group() as drains:
                for name in names:
                    drains.start_soon(one, name)
            group.cancel_scope.cancel()
    finally:
        await kube_api.close()
    return left


async def _progress(kube: KubeClient, names: list[str]) -> None:
    """Every 10 s, the pods still on each node, until cancelled."""
    while True:
        await anyio.sleep(_PROGRESS_EVERY)
        counts: dict[str, int] = {}
        for name in names:
            try:
                page = await kube.get("/api/v1/pods", {"fieldSelector": f"spec.nodeName={name}"})
            except KubeError:
                continue
            if page.get("items"):
                counts[name] = len(page["items"])
        if not counts:
            continue
        shown = ", ".join(f"{name}: {count}" for name, count in counts.items())
        print(f"  waiting for pods to go ({shown})", flush=True)


async def _warn_if_not_served(kube: KubeClient, name: str) -> None:
    """Say so when no salad-vk renews the node's Lease: then nothing deletes the groups."""
    try:
        lease = await kube.get(
            f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        )
    except KubeNotFound:
        return
    except KubeError as error:
        log.warning("cannot read the lease of %s: %s", name, error)
        return
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime")
    duration = float(spec.get("leaseDurationSeconds") or 40)
    if not renewed:
        return
    moment = datetime.fromisoformat(str(renewed).replace("Z", "+00:00"))
    age = (datetime.now(UTC) - moment).total_seconds()
    if age > duration:
        print(
            f"  {name}: its Lease was last renewed {age:.0f}s ago: no salad-vk seems to serve it,"
            " so its pods will stay Terminating and their container groups running until one"
            " does",
            flush=True,
        )
