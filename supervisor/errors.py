"""Errors a user can fix, said in one line: the CLI prints them, never a traceback.

A subcommand raises ``CliError`` for anything expected (a file that is not there, a
port in use, a cluster that cannot be configured); ``supervisor.cli.main`` prints
``salad-vk COMMAND: MESSAGE`` to stderr and exits with ``exit_code``. A ``ConfigError``
(every problem of a projects file or of the settings, one per line) exits 1. A
traceback is left for what is a bug.
"""

from __future__ import annotations

from config import ConfigError

USAGE = 2
"""The exit status of an environment the command cannot work in (argparse's own for a
bad command line): a kubeconfig, a port, a file named on the command line."""


class CliError(Exception):
    """One line naming what is wrong (with the file or flag) and what to do."""

    def __init__(self, message: str, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def expected_error(error: BaseException) -> CliError | ConfigError | None:
    """The expected error ``error`` is, or the first one a task group wrapped it in."""
    if isinstance(error, CliError | ConfigError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = expected_error(inner)
            if found is not None:
                return found
    return None
