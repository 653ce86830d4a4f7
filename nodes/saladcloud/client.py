"""Async client of the SaladCloud public API, as one node uses it.

One ``SaladClient`` per node: it knows the node's organization, project and key and
speaks through the process-wide ``httpx.AsyncClient`` it is given (the supervisor owns
that pool and closes it). Every attempt, retries included, first waits for a grant
from the node's share of its key's budget, so all the nodes of one key together stay
under the key's limit; a 429 pauses the whole key (``KeyBudget.penalize``).

Failures become the typed errors of ``errors.py``. Whatever the server says (JSON
ProblemDetails, an HTML error page, garbage) is reduced to a short, single-line
``detail`` with the API key masked out, so exceptions and logs are safe to show.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ..metrics import NodeMetrics
from . import models
from .errors import (
    SaladAuthError,
    SaladBadRequest,
    SaladError,
    SaladNameConflict,
    SaladNotFound,
    SaladProtocolError,
    SaladRateLimited,
    SaladUnavailable,
)
from .ratelimit import LimiterClosed, NodeLimiter, Priority
from .retry import RetryPolicy, parse_retry_after
from .transport import BEFORE_SEND

__all__ = ["RetryPolicy", "SaladClient"]

log = logging.getLogger("nodes.saladcloud")

_Model = TypeVar("_Model", bound=BaseModel)

_DETAIL_LIMIT = 300
_JSON = "application/json"
_MERGE_PATCH = "application/merge-patch+json"
_NAME_CONFLICT = "name_conflict"


class _List(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _GroupList(_List):
    items: list[models.ContainerGroup] = Field(default_factory=list)


class _InstanceList(_List):
    instances: list[models.ContainerGroupInstance] = Field(default_factory=list)


class _SystemLogList(_List):
    items: list[models.SystemLog] = Field(default_factory=list)


class _GpuClassList(_List):
    items: list[models.GpuClass] = Field(default_factory=list)


@dataclass(frozen=True)
class _Call:
    operation: str
    method: str
    path: str
    priority: Priority
    body: bytes | None = None
    content_type: str = _JSON
    changes: bool = False
    """The call changes the project, so the ownership gate is asked before it is sent.
    Not the same as ranking as a mutation: a read a mutation waits for ranks as one."""


def _unbind(response: httpx.Response) -> None:
    """Drop the read and closed body stream, which httpx binds to its response.

    The bound stream refers back to the response: a reference cycle of some 25 objects
    per request that only the cyclic collector frees. At 1,000 nodes they were nearly
    all of the young generation, and each young collection a 0.1-0.3 s stop of the
    event loop (``docs/benchmarks.md``). Without the stream, reference counting frees
    the response as soon as its reader lets go."""
    response.stream = _READ


_READ = httpx.ByteStream(b"")


@dataclass
class _Attempt:
    """What one failed attempt left behind, for the retry decision and the final error."""

    error: SaladError
    reason: str | None
    """Metric label of the retry reason, or None when the failure is final."""
    retry_after: float | None = None
    reached_server: bool = False


class SaladClient:
    """The SaladCloud operations of one node (one organization/project, one key)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: SecretStr,
        organization: str,
        project: str,
        limiter: NodeLimiter,
        node: str,
        metrics: NodeMetrics | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        guard: Callable[[str], None] | None = None,
    ) -> None:
        self._http = http
        self._guard = guard
        """Asked with the operation before each attempt of a mutation; raises to refuse it
        unsent (the node's ownership gate, ``nodes/tenure.py``)."""
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._organization = organization
        self._project = project
        self._limiter = limiter
        self._node = node
        self._metrics = metrics
        self._retry = retry if retry is not None else RetryPolicy()
        self._timeout = httpx.Timeout(timeout)
        self._log_extra = {"node": node, "project": f"{organization}/{project}"}
        self._list_path = self._containers()
        # Parsed once: httpx parses a URL given as a string on every request, a tenth
        # of a list's CPU in the client. The list is the request a node makes every
        # poll; the others come with pod events.
        self._list_url = httpx.URL(self._base_url + self._list_path)

    def __repr__(self) -> str:
        return (
            f"SaladClient(node={self._node!r}, base_url={self._base_url!r}, "
            f"project={self._organization + '/' + self._project!r})"
        )

    @property
    def limiter(self) -> NodeLimiter:
        """This node's share of its key's budget (the node paces its polls by it)."""
        return self._limiter

    # --- container groups ------------------------------------------------------------

    async def list_container_groups(
        self, *, priority: Priority = Priority.POLL
    ) -> list[models.ContainerGroup]:
        """At most 100 groups: the API has no way to page past them. ``priority`` is
        ``MUTATION`` for a list the node's mutations wait for (its first)."""
        call = _Call("list_container_groups", "GET", self._list_path, priority)
        return self._parse(call, await self._send(call), _GroupList).items

    async def get_container_group(
        self, name: str, *, priority: Priority = Priority.POLL
    ) -> models.ContainerGroup:
        """``priority`` is ``MUTATION`` for the look a deletion waits for."""
        call = _Call("get_container_group", "GET", self._containers(name), priority)
        return self._parse(call, await self._send(call), models.ContainerGroup)

    async def create_container_group(
        self, body: models.ContainerGroupPrototype
    ) -> models.ContainerGroup:
        """Create a group; ``SaladNameConflict.after_retry`` tells if it may be ours."""
        call = _Call(
            "create_container_group",
            "POST",
            self._containers(),
            Priority.MUTATION,
            body=_encode(body),
            changes=True,
        )
        return self._parse(call, await self._send(call), models.ContainerGroup)

    async def update_container_group(
        self, name: str, patch: models.ContainerGroupPatch
    ) -> models.ContainerGroup:
        call = _Call(
            "update_container_group",
            "PATCH",
            self._containers(name),
            Priority.MUTATION,
            body=_encode(patch),
            content_type=_MERGE_PATCH,
            changes=True,
        )
        return self._parse(call, await self._send(call), models.ContainerGroup)

    async def delete_container_group(self, name: str) -> None:
        path = self._containers(name)
        call = _Call("delete_container_group", "DELETE", path, Priority.MUTATION, changes=True)
        await self._send(call)

    async def start_container_group(self, name: str) -> None:
        path = self._containers(name, "start")
        call = _Call("start_container_group", "POST", path, Priority.MUTATION, changes=True)
        await self._send(call)

    async def stop_container_group(self, name: str) -> None:
        path = self._containers(name, "stop")
        call = _Call("stop_container_group", "POST", path, Priority.MUTATION, changes=True)
        await self._send(call)

    async def list_instances(self, name: str) -> list[models.ContainerGroupInstance]:
        path = self._containers(name, "instances")
        call = _Call("list_container_group_instances", "GET", path, Priority.DETAIL)
        return self._parse(call, await self._send(call), _InstanceList).instances

    async def get_system_logs(self, name: str) -> list[models.SystemLog]:
        path = self._containers(name, "system-logs")
        call = _Call("get_system_logs", "GET", path, Priority.POLL)
        return self._parse(call, await self._send(call), _SystemLogList).items

    # --- organization ----------------------------------------------------------------

    async def list_gpu_classes(self) -> list[models.GpuClass]:
        """Read for a create that names GPU classes, so it ranks as the create does:
        at ``POLL`` it would wait out every other node's creates on the key."""
        path = self._organization_path("gpu-classes")
        call = _Call("list_gpu_classes", "GET", path, Priority.MUTATION)
        return self._parse(call, await self._send(call), _GpuClassList).items

    async def get_quotas(self) -> models.Quotas:
        call = _Call("get_quotas", "GET", self._organization_path("quotas"), Priority.POLL)
        return self._parse(call, await self._send(call), models.Quotas)

    async def query_log_entries(self, query: models.LogEntryQuery) -> models.LogEntryCollection:
        """Log entries of the organization (the query names the project and group).

        At the lowest priority of the key's budget: ``kubectl logs`` takes only what
        creates, deletes and the node's list leave over."""
        call = _Call(
            "query_log_entries",
            "POST",
            self._organization_path("log-entries"),
            Priority.LOG,
            body=_encode(query),
        )
        return self._parse(call, await self._send(call), models.LogEntryCollection)

    # --- plumbing --------------------------------------------------------------------

    def _organization_path(self, *rest: str) -> str:
        parts = ["organizations", self._organization, *rest]
        return "/" + "/".join(quote(p, safe="") for p in parts)

    def _containers(self, *rest: str) -> str:
        parts = ["organizations", self._organization, "projects", self._project, "containers"]
        return "/" + "/".join(quote(p, safe="") for p in [*parts, *rest])

    async def _send(self, call: _Call) -> httpx.Response:
        """Send with limiter, retries and metrics; return the 2xx response or raise."""
        clock = self._limiter.budget.clock
        reached_server = False
        attempt = 0
        while True:
            attempt += 1
            try:
                waited = await self._limiter.acquire(call.priority)
            except LimiterClosed:
                # The node stopped being ours (its share closes then), or is stopping:
                # nothing will be granted, read or write.
                if self._guard is not None:
                    self._guard(call.operation)
                raise SaladUnavailable(call.operation, detail="the node is stopping") from None
            # Asked of every call that changes the project after the wait for a token and
            # before each retry, as close to sending as it gets.
            if self._guard is not None and call.changes:
                self._guard(call.operation)
            if self._metrics is not None:
                priority = call.priority.label
                self._metrics.ratelimiter_wait.labels(priority=priority).observe(waited)
                self._metrics.ratelimiter_waited.labels(node=self._node, priority=priority).inc(
                    waited
                )
            outcome = await self._attempt(call, reached_server)
            if isinstance(outcome, httpx.Response):
                self._set_up(1)
                return outcome
            reached_server = reached_server or outcome.reached_server
            if outcome.reason is None or attempt >= self._retry.max_attempts:
                raise self._final(outcome.error)
            delay = self._retry.delay(attempt, outcome.retry_after)
            if self._metrics is not None:
                self._metrics.saladcloud_retries.labels(
                    node=self._node, operation=call.operation, reason=outcome.reason
                ).inc()
            log.info(
                "%s attempt %d of %d failed (%s); retrying in %.2fs",
                call.operation,
                attempt,
                self._retry.max_attempts,
                outcome.error.brief,
                delay,
                extra=self._log_extra,
            )
            if outcome.reason == "rate_limited":
                # The whole key is over budget, not just this node: pause everyone;
                # this node's next acquire waits out the pause like the others.
                self._limiter.budget.penalize(delay)
            else:
                await clock.sleep(delay)

    async def _attempt(self, call: _Call, reached_before: bool) -> httpx.Response | _Attempt:
        headers = {"Salad-Api-Key": self._api_key.get_secret_value(), "Accept": _JSON}
        if call.body is not None:
            headers["Content-Type"] = call.content_type
        extensions = {}
        guard = self._guard
        if guard is not None and call.changes:
            # Asked again by the in-flight window once the request has its slot.
            extensions[BEFORE_SEND] = functools.partial(guard, call.operation)
        started = time.perf_counter()
        try:
            response = await self._http.request(
                call.method,
                self._list_url if call.path == self._list_path else self._base_url + call.path,
                headers=headers,
                content=call.body,
                timeout=self._timeout,
                extensions=extensions,
            )
        except httpx.TimeoutException as exc:
            self._count(call, type(exc).__name__, started)
            unsent = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            error = SaladUnavailable(
                call.operation,
                detail=f"{type(exc).__name__}: no answer within the timeout",
                url=self._base_url + call.path,
            )
            return _Attempt(error, "timeout", reached_server=not unsent)
        except httpx.TransportError as exc:
            self._count(call, type(exc).__name__, started)
            error = SaladUnavailable(
                call.operation,
                detail=self._clean(f"{type(exc).__name__}: {exc}"),
                url=self._base_url + call.path,
            )
            return _Attempt(
                error, "connection", reached_server=not isinstance(exc, httpx.ConnectError)
            )
        except httpx.HTTPError as exc:
            self._count(call, type(exc).__name__, started)
            error = SaladUnavailable(
                call.operation, detail=self._clean(f"{type(exc).__name__}: {exc}")
            )
            return _Attempt(error, None)
        _unbind(response)
        self._count(call, str(response.status_code), started)
        if response.is_success:
            return response
        return self._failure(call, response, reached_before)

    def _failure(self, call: _Call, response: httpx.Response, reached_before: bool) -> _Attempt:
        status = response.status_code
        problem_type, title, detail = self._problem(response)
        fields: dict[str, Any] = {
            "status": status,
            "problem_type": problem_type,
            "title": title,
            "detail": detail,
        }
        if status == 429:
            if self._metrics is not None:
                self._metrics.saladcloud_rate_limited.labels(node=self._node).inc()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return _Attempt(SaladRateLimited(call.operation, **fields), "rate_limited", retry_after)
        if status >= 500 or status == 408:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            reason = "server_error" if status >= 500 else "timeout"
            error = SaladUnavailable(call.operation, url=self._base_url + call.path, **fields)
            return _Attempt(error, reason, retry_after, reached_server=True)
        if status == 400 and _is_name_conflict(problem_type):
            return _Attempt(
                SaladNameConflict(call.operation, after_retry=reached_before, **fields), None
            )
        error_class: type[SaladError]
        if status == 400:
            error_class = SaladBadRequest
        elif status in (401, 403):
            error_class = SaladAuthError
        elif status == 404:
            if call.operation == "list_container_groups":
                # A missing project is what to check, and the URL shows it: a base URL
                # without /api/public finds nothing. (A missing group is normal.)
                fields["url"] = self._base_url + call.path
            error_class = SaladNotFound
        elif 400 <= status < 500:
            error_class = SaladError
        else:
            error_class = SaladProtocolError
        return _Attempt(error_class(call.operation, **fields), None)

    def _final(self, error: SaladError) -> SaladError:
        if isinstance(error, SaladAuthError | SaladUnavailable):
            self._set_up(0)
        elif isinstance(error, SaladNotFound | SaladBadRequest):
            self._set_up(1)  # the server answered and accepted the key
        return error

    def _parse(self, call: _Call, response: httpx.Response, model: type[_Model]) -> _Model:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            problems = exc.errors(include_url=False, include_input=False)
            first = problems[0] if problems else {"loc": (), "msg": "unreadable"}
            where = ".".join(str(part) for part in first["loc"]) or "body"
            detail = f"{len(problems)} problem(s) in the response; first at {where}: {first['msg']}"
            raise SaladProtocolError(
                call.operation, status=response.status_code, detail=self._clean(detail)
            ) from None

    def _problem(self, response: httpx.Response) -> tuple[str | None, str | None, str | None]:
        """(type, title, detail) of an error response, whatever its body is."""
        try:
            document = json.loads(response.text)
        except ValueError:  # empty, HTML, garbage
            document = None
        if isinstance(document, Mapping):
            problem_type, title, detail = (document.get(k) for k in ("type", "title", "detail"))
            return self._clean(problem_type), self._clean(title), self._clean(detail)
        return None, response.reason_phrase or None, self._clean(_text_of(response.text))

    def _clean(self, value: object) -> str | None:
        """One short line, with the API key masked even if a server echoed it; None
        when nothing is left."""
        if value is None:
            return None
        text = str(value)
        key = self._api_key.get_secret_value()
        if key:
            text = text.replace(key, "[redacted]")
        text = " ".join(text.split())
        if len(text) > _DETAIL_LIMIT:
            text = text[: _DETAIL_LIMIT - 1] + "…"
        return text or None

    def _count(self, call: _Call, status: str, started: float) -> None:
        if self._metrics is None:
            return
        self._metrics.saladcloud_requests.labels(
            node=self._node, operation=call.operation, status=status
        ).inc()
        self._metrics.saladcloud_request_duration.labels(operation=call.operation).observe(
            time.perf_counter() - started
        )

    def _set_up(self, value: int) -> None:
        if self._metrics is not None:
            self._metrics.saladcloud_up.labels(node=self._node).set(value)


def _encode(body: BaseModel) -> bytes:
    return json.dumps(models.request_json(body), separators=(",", ":")).encode()


def _is_name_conflict(problem_type: str | None) -> bool:
    if not problem_type:
        return False
    return problem_type == _NAME_CONFLICT or problem_type.rstrip("/").endswith("/" + _NAME_CONFLICT)


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SCRIPTS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def _text_of(body: str) -> str:
    """Readable words of a non-JSON error body (often an HTML page from a proxy)."""
    if "<" not in body:
        return body
    title = _TITLE.search(body)
    if title and title.group(1).strip():
        return html.unescape(_TAG.sub(" ", title.group(1)))
    return html.unescape(_TAG.sub(" ", _SCRIPTS.sub(" ", body)))
