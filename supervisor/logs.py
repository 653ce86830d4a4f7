"""Logging for one process serving many nodes: who said it, and never a secret.

Every line logged from inside a node's tasks carries that node's name and project:
the supervisor sets them in a context variable when it starts the node, and tasks
inherit their parent's context, so no call site has to remember. Lines that pass
``extra={"node": ...}`` themselves keep what they passed.

Secrets are scrubbed at the last moment, in the formatter, from the finished text:
whatever a library put in an exception message or a URL, an API key registered with
``Redactor.add`` comes out as ``***``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]

_node: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "salad_vk_node", default=None
)
_MASK = "***"
_MIN_SECRET = 6
"""Shorter strings are not masked: replacing every "abc" in the logs helps no one."""


@contextlib.contextmanager
def node_context(node: str, project: str) -> Iterator[None]:
    """Log lines from this context (and tasks started in it) name ``node`` and ``project``."""
    token = _node.set((node, project))
    try:
        yield
    finally:
        _node.reset(token)


class Redactor:
    """The set of secret strings that must never be written out."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) >= _MIN_SECRET:
            with self._lock:
                self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text


class _NodeFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = _node.get()
        if current is not None:
            if not hasattr(record, "node"):
                record.node = current[0]
            if not hasattr(record, "project"):
                record.project = current[1]
        return True


class _TextFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        where = [f"{k}={getattr(record, k)}" for k in ("node", "project") if hasattr(record, k)]
        if where:
            first, _, rest = line.partition("\n")
            line = f"{first} [{' '.join(where)}]" + (f"\n{rest}" if rest else "")
        return self._redactor.scrub(line)


class _JsonFormatter(logging.Formatter):
    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._redactor.scrub(json.dumps(entry, ensure_ascii=False))


def configure(
    level: str = "INFO",
    log_format: LogFormat = "text",
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> Redactor:
    """Route every logger of the process to one handler; return the redactor it uses."""
    redactor = redactor or Redactor()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_NodeFields())
    handler.setFormatter(
        _JsonFormatter(redactor) if log_format == "json" else _TextFormatter(redactor)
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Client libraries log request details at DEBUG; keep them out unless asked for.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "kubernetes_asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return redactor
