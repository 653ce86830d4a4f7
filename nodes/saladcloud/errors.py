"""Typed failures of SaladCloud API calls.

The reconciler decides what to do from the class alone: retry later (``permanent`` is
False), fail the pod with the server's own words (a 4xx that will not change), adopt a
group it already created (``SaladNameConflict``), or report SaladCloud itself unhealthy
(``SaladAuthError``, ``SaladUnavailable``). The message is built from what the server
said, never from what we sent, so the API key cannot end up in it.
"""

from __future__ import annotations

_TRANSIENT_STATUSES = frozenset({408, 425, 429})


class SaladError(Exception):
    """A SaladCloud call that did not give the answer the caller asked for."""

    def __init__(
        self,
        operation: str,
        *,
        status: int | None = None,
        problem_type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        url: str | None = None,
    ) -> None:
        self.operation = operation
        self.url = url
        """The URL that failed, for errors where it is what to check (no answer, 404)."""
        self.status = status
        self.problem_type = problem_type
        self.title = title
        self.detail = detail
        super().__init__(self._message())

    @property
    def permanent(self) -> bool:
        """True when repeating the same request cannot succeed (a 4xx other than 429/408)."""
        if self.status is None:
            return False
        return 400 <= self.status < 500 and self.status not in _TRANSIENT_STATUSES

    @property
    def brief(self) -> str:
        """The message without SaladCloud's detail, which may quote a request body (and
        with it Secret values): what a log line about a retried call may say."""
        return self._message(detail=False)

    def _message(self, *, detail: bool = True) -> str:
        parts = [self.operation if self.url is None else f"{self.operation} {self.url}"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.problem_type and self.problem_type != "about:blank":
            parts.append(self.problem_type)
        words = ": ".join(w for w in (self.title, self.detail if detail else None) if w)
        if words:
            parts.append(words)
        return " - ".join(parts)

    def __str__(self) -> str:
        return self._message()


class SaladUnavailable(SaladError):
    """No usable answer: network error, timeout, or a 5xx that outlasted the retries."""

    @property
    def permanent(self) -> bool:
        return False


class SaladRateLimited(SaladError):
    """The API key's request budget stayed exhausted through every retry."""

    @property
    def permanent(self) -> bool:
        return False


class SaladAuthError(SaladError):
    """The key is missing, unknown, revoked, or lacks access (401/403)."""


class SaladNotFound(SaladError):
    """The organization, project or container group does not exist (404)."""


class SaladBadRequest(SaladError):
    """The server refused the request body or the action (400)."""


class SaladNameConflict(SaladBadRequest):
    """A create met a group of the same name (ProblemDetails type ``name_conflict``).

    ``after_retry`` is True when an earlier attempt of this same create may have reached
    the server (it timed out, lost its connection or got a 5xx): the group in the way is
    then most likely the one this call created, and the caller should adopt it.
    """

    def __init__(
        self,
        operation: str,
        *,
        status: int | None = None,
        problem_type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        url: str | None = None,
        after_retry: bool = False,
    ) -> None:
        self.after_retry = after_retry
        super().__init__(
            operation, status=status, problem_type=problem_type, title=title, detail=detail, url=url
        )

    def _message(self, *, detail: bool = True) -> str:
        message = super()._message(detail=detail)
        if self.after_retry:
            message += " (an earlier attempt of this create may have succeeded)"
        return message


class SaladProtocolError(SaladError):
    """A success status whose body is not the JSON the API documents."""

    @property
    def permanent(self) -> bool:
        return False


API_PATH = "/api/public"
"""Where SaladCloud's public API lives under its host; a base URL without it finds nothing."""


def project_not_found_message(error: SaladError) -> str:
    """What a 404 on the project's list tells the user, and what to check."""
    if error.url is not None and f"{API_PATH}/" not in error.url:
        return (
            f"SaladCloud answered 404 for the project's container groups ({error}): the API"
            f" base URL may lack {API_PATH} (saladApiUrl; the default is"
            f" https://api.salad.com{API_PATH})"
        )
    return (
        f"SaladCloud has no such project ({error}): check organization and project in the"
        " projects file, and that the API key belongs to that organization"
    )
