"""Kubernetes API errors, typed by what the caller does about them."""

from __future__ import annotations

import json
from typing import Any


class KubeError(Exception):
    """The API server answered with an error status (or not at all: ``status`` 0)."""

    def __init__(self, status: int, reason: str, message: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def retryable(self) -> bool:
        """Worth trying again later: the server was unavailable, busy or throttling us."""
        return self.status in (0, 429) or self.status >= 500


class KubeNotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class KubeConflict(KubeError):
    """409: a resourceVersion or UID precondition failed, or the object already exists."""


class KubeGone(KubeError):
    """410: the resourceVersion a watch asked for is too old; list again."""


_BY_STATUS: dict[int, type[KubeError]] = {404: KubeNotFound, 409: KubeConflict, 410: KubeGone}


def error_from_response(status: int, text: str, method: str, path: str) -> KubeError:
    """Build the typed error from a response body that should be a ``Status`` object."""
    reason, message = "", text[:500]
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or message)
    return _BY_STATUS.get(status, KubeError)(status, reason, message, method, path)


def error_from_watch_event(status: dict[str, Any], path: str) -> KubeError:
    """A watch delivers errors as an ``ERROR`` event whose object is a ``Status``."""
    code = int(status.get("code") or 0)
    return _BY_STATUS.get(code, KubeError)(
        code,
        str(status.get("reason") or ""),
        str(status.get("message") or ""),
        "WATCH",
        path,
    )
