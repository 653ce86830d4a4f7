"""A thin JSON client over the shared kubernetes-asyncio ``ApiClient``.

The ``ApiClient`` (created once by the supervisor) brings what is hard to get right:
kubeconfig and in-cluster configuration, client certificates, token refresh, one
aiohttp connection pool. This wrapper adds only what a node needs on top: raw JSON
in and out, typed errors, per-node accounting, and a concurrency limit for pod work
that the lease renewals do not share (see ``unlimited``), so that a burst of pod
writes can never hold a lease renewal back in the client-side queue.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any, Literal

import aiohttp
import anyio
from aiohttp.http_exceptions import HttpProcessingError
from kubernetes_asyncio.client.api_client import ApiClient

from ..metrics import NodeMetrics
from .errors import KubeError, error_from_response, error_from_watch_event

PatchKind = Literal["strategic", "merge", "json"]

_PATCH_CONTENT_TYPES: dict[PatchKind, str] = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}

JSON = dict[str, Any]


def resource_of(path: str) -> str:
    """``/api/v1/namespaces/ns/pods/p/status`` -> ``pods/status`` (a bounded metric label)."""
    parts = [p for p in path.split("?", maxsplit=1)[0].split("/") if p]
    # Skip the group/version prefix: /api/v1/... or /apis/<group>/<version>/...
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource = rest[0] if rest else "unknown"
    if len(rest) > 2:
        return f"{resource}/{rest[2]}"
    return resource


def _decode(text: str, method: str, path: str) -> JSON:
    """A JSON object from the API server, or a KubeError saying it was not one."""
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise KubeError(0, "InvalidResponse", f"not JSON: {error}", method, path) from None
    if not isinstance(document, dict):
        raise KubeError(0, "InvalidResponse", "not a JSON object", method, path)
    return document


_TRANSPORT_ERRORS = (
    aiohttp.ClientError,
    # Not a ClientError: a watch line over the read buffer's limit (an object bigger
    # than the API server should ever send) and other unreadable answers. A KubeError,
    # so callers retry or relist instead of dying on it.
    HttpProcessingError,
    TimeoutError,
    OSError,
)


class KubeClient:
    """JSON requests for one node, accounted to it and limited in concurrency."""

    def __init__(
        self,
        api: ApiClient,
        *,
        node: str,
        metrics: NodeMetrics | None = None,
        concurrency: int = 16,
        timeout: float = 30.0,
        guard: Callable[[str, str], None] | None = None,
    ) -> None:
        self._api = api
        self._guard = guard
        """Asked ``(method, path)`` before every write; raises to refuse it unsent."""
        self._node = node
        self._metrics = metrics
        self._limiter: anyio.CapacityLimiter | None = anyio.CapacityLimiter(concurrency)
        self._timeout = timeout

    def unlimited(self) -> KubeClient:
        """The same client without the concurrency limit, for heartbeats only."""
        twin = copy.copy(self)
        twin._limiter = None
        return twin

    async def get(
        self, path: str, params: dict[str, str] | None = None, request_timeout: float | None = None
    ) -> JSON:
        return await self.request("GET", path, params=params, request_timeout=request_timeout)

    async def post(self, path: str, body: JSON, request_timeout: float | None = None) -> JSON:
        return await self.request("POST", path, body=body, request_timeout=request_timeout)

    async def put(self, path: str, body: JSON, request_timeout: float | None = None) -> JSON:
        return await self.request("PUT", path, body=body, request_timeout=request_timeout)

    async def patch(self, path: str, body: Any, kind: PatchKind = "strategic") -> JSON:
        return await self.request("PATCH", path, body=body, content_type=_PATCH_CONTENT_TYPES[kind])

    async def delete(self, path: str, body: JSON | None = None) -> JSON:
        return await self.request("DELETE", path, body=body)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: float | None = None,
    ) -> JSON:
        # Heartbeats pass no limiter: pod work can never queue them.
        limit = self._limiter if self._limiter is not None else contextlib.nullcontext()
        async with limit:
            # Asked once the request's turn has come, not before it waited for one: a
            # write queued behind hung ones must not go out after the node was lost.
            if self._guard is not None and method != "GET":
                self._guard(method, path)
            return await self._send(
                method,
                path,
                params=params,
                body=body,
                content_type=content_type,
                request_timeout=request_timeout,
            )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None,
        body: Any,
        content_type: str,
        request_timeout: float | None,
    ) -> JSON:
        code = "error"
        try:
            response = await self._api.call_api(
                path,
                method,
                query_params=list((params or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=request_timeout or self._timeout,
            )
            async with response:
                text = await response.text()
                code = str(response.status)
                if response.status >= 400:
                    raise error_from_response(response.status, text, method, path)
            return _decode(text, method, path)
        except _TRANSPORT_ERRORS as error:
            raise KubeError(0, type(error).__name__, str(error), method, path) from error
        finally:
            self._account(method, path, code)

    def _account(self, method: str, path: str, code: str) -> None:
        if self._metrics is not None:
            self._metrics.kubernetes_requests.labels(
                node=self._node, verb=method, resource=resource_of(path), code=code
            ).inc()

    async def watch(
        self,
        path: str,
        params: dict[str, str],
        server_timeout: int,
        *,
        silence_timeout: float | None = None,
    ) -> AsyncGenerator[tuple[str, JSON], None]:
        """Yield ``(type, object)`` watch events until the server ends the watch.

        An ``ERROR`` event is raised as the matching ``KubeError`` (a 410 as
        ``KubeGone``); ``BOOKMARK`` events are yielded so the caller can advance its
        resourceVersion. A connection that stays silent for ``silence_timeout``
        (default: the server timeout plus 30 s) raises a ``KubeError``: with bookmarks
        asked for, the server is never silent that long on a live connection.
        """
        query = {**params, "watch": "true", "timeoutSeconds": str(server_timeout)}
        code = "error"
        try:
            response = await self._api.call_api(
                path,
                "GET",
                query_params=list(query.items()),
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                # No total timeout: the server ends the watch after server_timeout;
                # the read timeout only catches a connection that went silent.
                _request_timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=self._timeout,
                    sock_read=silence_timeout or server_timeout + 30,
                ),
            )
            async with response:
                code = str(response.status)
                if response.status >= 400:
                    raise error_from_response(response.status, await response.text(), "WATCH", path)
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = _decode(line.decode("utf-8", "replace"), "WATCH", path)
                    kind, obj = str(event.get("type")), event.get("object") or {}
                    if kind == "ERROR":
                        raise error_from_watch_event(obj, path)
                    yield kind, obj
        except _TRANSPORT_ERRORS as error:
            raise KubeError(0, type(error).__name__, str(error), "WATCH", path) from error
        finally:
            self._account("WATCH", path, code)
