"""The ``salad-vk`` command line: one subcommand per thing the process can do.

Each subcommand lives in its own ``cmd_*`` module exposing ``register(commands)``;
this module only assembles the parser and dispatches.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from . import __version__, cmd_check_config, cmd_demo, cmd_run, cmd_simulate


def _version(_: argparse.Namespace) -> int:
    print(f"salad-vk {__version__} (Python {platform.python_version()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salad-vk",
        description="Run SaladCloud projects as virtual Kubernetes nodes, many in one process.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cmd_run.register(commands)
    cmd_check_config.register(commands)
    cmd_simulate.register(commands)
    cmd_demo.register(commands)
    show = commands.add_parser("version", help="print the version and exit")
    show.set_defaults(handler=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
