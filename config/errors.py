"""What goes wrong in configuration, said so that a person can fix it.

A problem names the file, the line when one is known, the key path and what is wrong.
One load reports every problem it can find, not just the first, so that fixing a file
takes one round trip. No problem ever quotes the content of a key file or the value of
an environment variable holding a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
"""An error stops the file from being used; a warning is worth knowing but changes nothing."""

KeyPath = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and sequence indexes from the top."""

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_key_path(path: Iterable[str | int]) -> str:
    """``("nodes", 1, "capacity", "nvidia.com/gpu")`` -> ``nodes[1].capacity["nvidia.com/gpu"]``.

    Keys that would read ambiguously after a dot (resource names, label keys) are quoted.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


def plain_message(pydantic_message: str) -> str:
    """A pydantic error message in the words of this project's problems."""
    message = pydantic_message.removeprefix("Value error, ")
    return message.replace("Input should be", "must be", 1)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with one value.

    ``file`` is the file as the user named it, or the name of another source
    (``environment``, ``command line``) for process settings.
    """

    file: str
    line: int | None
    key_path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.severity == "warning":
            where += ": warning"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"

    def as_json(self) -> dict[str, str | int | None]:
        """The problem as machine-readable fields (``check-config -o json``)."""
        return {
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "path": self.key_path,
            "message": self.message,
        }


def sorted_problems(problems: Iterable[ConfigProblem]) -> tuple[ConfigProblem, ...]:
    """File-level problems first, then in the order a reader meets them in the file."""
    return tuple(sorted(problems, key=lambda p: (p.file, p.line is not None, p.line or 0)))


class ConfigError(Exception):
    """Configuration that cannot be used; ``problems`` lists every reason found.

    Warnings found in the same pass travel with the errors, so one report says all.
    """

    problems: tuple[ConfigProblem, ...]

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        if not any(problem.severity == "error" for problem in problems):
            raise ValueError("a ConfigError needs at least one error")
        self.problems = sorted_problems(problems)
        super().__init__(str(self))

    @property
    def errors(self) -> tuple[ConfigProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)
