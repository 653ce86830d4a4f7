"""The ``salad-vk`` command line: one subcommand per thing the process can do.

Each subcommand lives in its own ``cmd_*`` module exposing ``register(commands)``;
this module only assembles the parser and dispatches. An expected error (a file
that is not there, a cluster that cannot be configured, a projects file with
problems) is printed as what to fix, never as a traceback.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from config import ConfigError

from . import (
    __version__,
    cmd_check_config,
    cmd_completion,
    cmd_demo,
    cmd_drain,
    cmd_run,
    cmd_simulate,
)
from .errors import expected_error

VERSION = f"salad-vk {__version__} (Python {platform.python_version()})"


def _version(_: argparse.Namespace) -> int:
    print(VERSION)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salad-vk",
        description="Run SaladCloud projects as virtual Kubernetes nodes, many in one process.",
    )
    parser.add_argument("--version", action="version", version=VERSION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cmd_run.register(commands)
    cmd_check_config.register(commands)
    cmd_drain.register(commands)
    cmd_simulate.register(commands)
    cmd_demo.register(commands)
    cmd_completion.register(commands, build_parser)
    show = commands.add_parser("version", help="print the version and exit")
    show.set_defaults(handler=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except BaseException as error:
        found = expected_error(error)
        if found is None:
            raise
        if isinstance(found, ConfigError):
            print(found, file=sys.stderr)
            return 1
        print(f"salad-vk {args.command}: {found}", file=sys.stderr)
        return found.exit_code


if __name__ == "__main__":
    sys.exit(main())
