"""Logging for one process serving many nodes: who said it, and never a secret.

Every line logged from inside a node's tasks carries that node's name and project:
the supervisor sets them in a context variable when it starts the node, and tasks
inherit their parent's context, so no call site has to remember. Lines that pass
``extra={"node": ...}`` themselves keep what they passed.

Secrets are scrubbed at the last moment, in the formatter, from the finished text:
whatever a library put in an exception message or a URL, an API key registered with
``Redactor.add`` comes out as ``***``. Only whole tokens are replaced, and only secrets
of at least ``MIN_MASKED_SECRET`` characters: a key ``wrongkey`` must not turn the node
name ``salad-wrongkey`` into ``salad-***`` in every line (the projects file warns
about a key that short; SaladCloud's are far longer).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from config.node import MIN_MASKED_SECRET

LogFormat = Literal["text", "json"]

_node: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "salad_vk_node", default=None
)
_MASK = "***"
_WORD_CHAR = r"[A-Za-z0-9_\-]"
"""Characters that continue a token: a secret next to one is part of a longer word."""
_TOKEN = re.compile(f"{_WORD_CHAR}{{{MIN_MASKED_SECRET},}}")
"""A whole token long enough to be a secret (``_WORD_CHAR`` runs are maximal here)."""


@contextlib.contextmanager
def node_context(node: str, project: str) -> Iterator[None]:
    """Log lines from this context (and tasks started in it) name ``node`` and ``project``."""
    token = _node.set((node, project))
    try:
        yield
    finally:
        _node.reset(token)


class Redactor:
    """The set of secret strings that must never be written out.

    A secret made only of token characters (every SaladCloud API key) can only ever be
    a whole token, so such secrets are found by cutting the text into tokens (one C
    scan) and looking each up in a set. One regex alternation of every secret, rebuilt
    on each ``add``, cost a thousand nodes 20 s of start-up with the event loop stopped
    and a few milliseconds for every line logged after (``docs/benchmarks.md``). The
    rare secret with other characters (a registry password, say) still goes through
    an alternation, built when first needed.
    """

    def __init__(self) -> None:
        self._tokens: set[str] = set()
        self._others: set[str] = set()
        self._too_short: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._pattern_stale = False
        self._lock = threading.Lock()

    def add(self, secret: str, *, owner: str = "") -> None:
        """Mask ``secret`` from now on, if it is long enough to be told from a word; a
        shorter one is said once (naming ``owner``, never the secret)."""
        if not secret:
            return
        if len(secret) < MIN_MASKED_SECRET:
            if secret not in self._too_short:
                self._too_short.add(secret)
                logging.getLogger(__name__).warning(
                    "the API key of %s is %d characters long, shorter than %d: it is not"
                    " masked in logs (SaladCloud keys are far longer; check it is the right"
                    " key)",
                    owner or "a node",
                    len(secret),
                    MIN_MASKED_SECRET,
                )
            return
        with self._lock:
            if _TOKEN.fullmatch(secret):
                self._tokens.add(secret)
            elif secret not in self._others:
                self._others.add(secret)
                self._pattern_stale = True

    def scrub(self, text: str) -> str:
        # Secrets with other characters first: one may contain a token-only secret,
        # which must not be masked on its own and leave the rest of the longer one.
        pattern = self._other_pattern()
        if pattern is not None:
            text = pattern.sub(_MASK, text)
        tokens = self._tokens
        if tokens:
            text = _TOKEN.sub(lambda m: _MASK if m.group() in tokens else m.group(), text)
        return text

    def _other_pattern(self) -> re.Pattern[str] | None:
        if self._pattern_stale:
            with self._lock:
                # Longest first, so a secret that contains another is masked whole.
                alternatives = "|".join(
                    re.escape(s) for s in sorted(self._others, key=len, reverse=True)
                )
                self._pattern = re.compile(f"(?<!{_WORD_CHAR})(?:{alternatives})(?!{_WORD_CHAR})")
                self._pattern_stale = False
        return self._pattern


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
        # Scrubbed before encoding: JSON turns a newline before a key into "\n", whose
        # "n" would glue onto the key and hide it from a whole-token match.
        scrub = self._redactor.scrub
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool) else scrub(str(value))
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return scrub(json.dumps(entry, ensure_ascii=False))


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
    # aiohttp's server logs a traceback at ERROR for any malformed request: anyone who
    # can reach the kubelet API port could fill the log. Our handlers log their own errors.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    return redactor
