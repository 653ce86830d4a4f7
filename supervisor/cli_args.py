"""Arguments several subcommands share, spelt one way everywhere.

Log levels are lower case (upper case accepted), files are ``FILE``, durations
``SECONDS``, counts ``N``: the same metavar for the same kind of value in every
subcommand's ``--help``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from config import LogLevel

LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
LOG_LEVEL_METAVAR = "{" + ",".join(LOG_LEVELS) + "}"


def log_level(value: str) -> str:
    """An argparse type: a log level in any case, returned lower case."""
    level = value.lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a log level: choose from {', '.join(LOG_LEVELS)}"
        )
    return level


def add_log_level(parser: argparse.ArgumentParser, default: str = "info") -> None:
    parser.add_argument(
        "--log-level",
        type=log_level,
        default=default,
        metavar=LOG_LEVEL_METAVAR,
        help=f"lowest level logged, lower or upper case (default {default})",
    )


def add_kubeconfig(parser: argparse.ArgumentParser, help_more: str = "") -> None:
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="kubeconfig of the cluster; default: KUBECONFIG, else ~/.kube/config, else the"
        " pod's service account" + help_more,
    )
