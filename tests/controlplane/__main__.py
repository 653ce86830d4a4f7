"""``python -m tests.controlplane build|up|down``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import binaries as build_module
from . import cluster


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.controlplane",
        description=(
            "A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, "
            f"kube-scheduler {build_module.KUBERNETES_VERSION}) on 127.0.0.1."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "build",
        help="build the binaries into ~/.cache/salad-vk/controlplane/<version>/ "
        "(or use $KUBEBUILDER_ASSETS) and print their folder",
    )
    start = commands.add_parser(
        "up", help="start the components in the background; print the kubeconfig path"
    )
    start.add_argument("--dir", type=Path, required=True, help="folder for state, certs, logs")
    start.add_argument(
        "--node-monitor-grace-period",
        type=float,
        metavar="SECONDS",
        help="how long a node may stop heartbeating before it is marked Unknown "
        "(Kubernetes default: 50)",
    )
    start.add_argument(
        "--default-toleration-seconds",
        type=int,
        metavar="SECONDS",
        help="default not-ready/unreachable NoExecute toleration given to pods "
        "(Kubernetes default: 300)",
    )
    stop = commands.add_parser("down", help="stop exactly the processes `up` started in --dir")
    stop.add_argument("--dir", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            binaries = build_module.build()
            print(binaries.kube_apiserver.parent)
        elif args.command == "up":
            plane = cluster.up(
                args.dir,
                node_monitor_grace_period=args.node_monitor_grace_period,
                default_toleration_seconds=args.default_toleration_seconds,
            )
            print(plane.kubeconfig)
        else:
            stopped = cluster.down(args.dir)
            print(
                f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}",
                file=sys.stderr,
            )
    except (build_module.BuildError, cluster.ControlPlaneError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
