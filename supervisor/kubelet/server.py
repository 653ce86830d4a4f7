"""The kubelet API of every node of the process: one HTTPS listener.

Each request is authenticated, then authorized for the node(s) it concerns
(``routes``), then answered; nothing is served without an allowing decision. Answers
and errors have the kubelet's shapes (plain text with the kubelet's wording, JSON
documents), so ``kubectl`` prints them as it would a real node's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web
from anyio.abc import TaskStatus

from config import parse_listen_address
from nodes.kube import KubeClient
from nodes.saladcloud.errors import SaladError, SaladRateLimited, SaladUnavailable
from nodes.saladcloud.ratelimit import KeyBudget

from ..errors import CliError
from . import documents, log_plan
from .auth import AuthError, Reviewer, User, bearer_token, user_of_certificate
from .directory import NodeLookup, ServedNode
from .log_options import LogOptions, OptionsRefused, parse_log_options
from .log_plan import FOLLOW_OVERLAP, FollowState, LineWriter, Refused, Target, merge_handled
from .logs import LogReader, follow, utc_now
from .metrics import KubeletMetrics
from .routes import Kind, Route, attributes, forwarded_node, route
from .tls import CaSource, ServingTls, configmap_client_ca

log = logging.getLogger(__name__)

JSON = Mapping[str, Any]
_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class KubeletOptions:
    address: str = "0.0.0.0:10250"
    cert_file: Path | None = None
    key_file: Path | None = None
    addresses: tuple[str, ...] = ("127.0.0.1",)
    """What the self-signed serving certificate is for (the nodes' InternalIP)."""
    follow_interval: float = 2.0
    max_followers_per_key: int = 20
    tls_reload_interval: float = 30.0


class FollowerSlots:
    """At most ``limit`` followed logs per API key: they poll the key's budget."""

    def __init__(self, limit: int, metrics: KubeletMetrics | None = None) -> None:
        self.limit = limit
        self._taken: dict[KeyBudget, int] = {}
        self._metrics = metrics

    def taken(self, budget: KeyBudget) -> int:
        return self._taken.get(budget, 0)

    def take(self, budget: KeyBudget) -> bool:
        if self._taken.get(budget, 0) >= self.limit:
            return False
        self._taken[budget] = self._taken.get(budget, 0) + 1
        if self._metrics is not None:
            self._metrics.log_followers.inc()
        return True

    def release(self, budget: KeyBudget) -> None:
        left = self._taken.get(budget, 0) - 1
        if left > 0:
            self._taken[budget] = left
        else:
            self._taken.pop(budget, None)
        if self._metrics is not None:
            self._metrics.log_followers.dec()


def _text(status: int, message: str) -> web.Response:
    if not message.endswith("\n"):
        message += "\n"
    return web.Response(status=status, text=message, content_type="text/plain", charset="utf-8")


_RENDERED_FOR = 5.0
"""Seconds a rendered ``/metrics/resource`` page is served again (metrics-server
scrapes every 15 s by default)."""


class KubeletServer:
    def __init__(
        self,
        options: KubeletOptions,
        *,
        kube: KubeClient,
        nodes: NodeLookup,
        metrics: KubeletMetrics,
        client_ca: CaSource | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._options = options
        self._nodes = nodes
        self._metrics = metrics
        self._reviewer = Reviewer(kube)
        self._followers = FollowerSlots(options.max_followers_per_key, metrics)
        self._now = now
        self.tls = ServingTls(
            cert_file=options.cert_file,
            key_file=options.key_file,
            addresses=options.addresses,
            client_ca=client_ca or configmap_client_ca(kube),
            reload_interval=options.tls_reload_interval,
        )
        self.port: int | None = None
        self._rendered: tuple[float, frozenset[str], bytes] | None = None

    @property
    def reviewer(self) -> Reviewer:
        return self._reviewer

    @property
    def followers(self) -> FollowerSlots:
        return self._followers

    # --- serving --------------------------------------------------------------------------

    async def serve(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; ``task_status`` gets the bound port."""
        host, port = parse_listen_address(self._options.address)
        try:
            listener = await self.tls.load()
        except (OSError, ssl.SSLError, ValueError) as error:
            raise CliError(
                "cannot load the kubelet API's serving certificate "
                "(--kubelet-tls-cert-file, --kubelet-tls-key-file): "
                f"{error}: give a readable PEM certificate and its key"
            ) from None
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        # A client that hangs up cancels its handler: a followed log stops polling at once.
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=listener)
            try:
                await site.start()
            except OSError as error:
                why = os.strerror(error.errno) if error.errno else str(error)
                raise CliError(
                    f"cannot listen on {self._options.address} (--kubelet-address) for the "
                    f"kubelet API: {why}: choose another HOST:PORT (a real kubelet may hold "
                    "10250 on this host)"
                ) from None
            bound = runner.addresses[0] if runner.addresses else (host, port)
            self.port = int(bound[1])
            log.info("kubelet API listening on %s:%d", host, self.port)
            task_status.started(self.port)
            await self.tls.follow()
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
                self.tls.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        where = route(request.path)
        code = "cancelled"  # the client left before an answer
        try:
            try:
                response = await self._answer(request, where)
            except Exception:
                log.exception("kubelet API request %s %s failed", request.method, request.path)
                response = _text(500, "Internal Server Error")
            code = str(response.status)
            return response
        finally:
            self._metrics.requests.labels(path=where.metric_path, code=code).inc()
            self._metrics.request_duration.labels(path=where.metric_path).observe(
                time.monotonic() - started
            )

    # --- who, and may they ---------------------------------------------------------------

    async def _user(self, request: web.Request) -> User | None:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        user = user_of_certificate(peer)
        if user is not None:
            return user
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        return await self._reviewer.user_of_token(token)

    async def _allowed(self, user: User, request: web.Request, scope: list[str]) -> list[str]:
        """The nodes of ``scope`` the user may do this on (all nodes if none is served).

        A scope of several nodes (a request to the shared address that names no node,
        such as metrics-server's scrape of each Node) is one review for all nodes, not
        one per node: the scraper asks once per node, so per-node reviews would cost
        the square of the nodes served. Who may see only some nodes asks through the
        API server's node proxy, which names the node."""
        if len(scope) > 1:
            every = await self._reviewer.allowed(user, attributes(request.method, request.path, ""))
            return scope if every else []
        names = scope or [""]
        decisions: dict[str, bool] = {}
        failures: list[AuthError] = []

        async def decide(name: str) -> None:
            try:
                decisions[name] = await self._reviewer.allowed(
                    user, attributes(request.method, request.path, name)
                )
            except AuthError as error:  # raised below: a task group would wrap it
                failures.append(error)

        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(decide, name)
        if failures:
            raise failures[0]
        return [name for name in names if decisions[name]]

    async def _answer(self, request: web.Request, where: Route) -> web.StreamResponse:
        try:
            user = await self._user(request)
        except AuthError as error:
            log.warning("kubelet API: cannot authenticate a request: %s", error)
            user = None
        if user is None:
            self._metrics.authorizations.labels(result="unauthenticated").inc()
            return _text(401, "Unauthorized")
        served = self._nodes()
        holder = _holder(served, where.pod_key) if where.pod else None
        hint = forwarded_node(request.headers.get("X-Forwarded-Uri"))
        # The API server authorized its user for one node's proxy and calls with its own
        # certificate: the answer must stay within that node, never widen to others.
        if hint is not None:
            scope = [hint]
        elif holder is not None:
            scope = [holder.name]
        else:
            scope = sorted(served)
        try:
            allowed = await self._allowed(user, request, scope)
        except AuthError as error:
            self._metrics.authorizations.labels(result="error").inc()
            log.warning("kubelet API: cannot authorize a request: %s", error)
            wanted = attributes(request.method, request.path, scope[0] if scope else "")
            return _text(
                500,
                f"Authorization error (user={user.name}, verb={wanted.verb}, "
                f"resource=nodes, subresource={wanted.subresource})",
            )
        if not allowed:
            self._metrics.authorizations.labels(result="denied").inc()
            wanted = attributes(request.method, request.path, "")
            return _text(
                403,
                f"Forbidden (user={user.name}, verb={wanted.verb}, resource=nodes, "
                f"subresource(s)=[{wanted.subresource}])",
            )
        self._metrics.authorizations.labels(result="allowed").inc()
        if hint is not None and (hint not in served or (holder and holder.name != hint)):
            what = f"pod {where.pod_key}" if where.pod else "the node's data"
            return _text(404, f"{what} is not served by node {hint} here")
        visible = {name: served[name] for name in allowed if name in served}
        return await self._serve(request, where, visible, holder)

    # --- answers -------------------------------------------------------------------------

    def _resource_metrics(self, visible: Mapping[str, ServedNode]) -> bytes:
        """The page for ``visible``, rendered once per ``_RENDERED_FOR`` seconds: the
        scraper asks at every Node's address, which for the nodes of one replica is
        the same address, within moments of each other."""
        names = frozenset(visible)
        now = time.monotonic()
        kept = self._rendered
        if kept is not None and kept[1] == names and now - kept[0] < _RENDERED_FOR:
            return kept[2]
        page = documents.resource_metrics(
            [pod for node in visible.values() for pod in node.pods.values()]
        )
        self._rendered = (now, names, page)
        return page

    async def _serve(
        self,
        request: web.Request,
        where: Route,
        visible: dict[str, ServedNode],
        holder: ServedNode | None,
    ) -> web.StreamResponse:
        kind = where.kind
        read_only = kind in (
            Kind.CONTAINER_LOGS,
            Kind.PODS,
            Kind.HEALTHZ,
            Kind.STATS_SUMMARY,
            Kind.METRICS_RESOURCE,
        )
        if read_only and request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="Method Not Allowed\n", headers={"Allow": "GET"})
        if kind is Kind.HEALTHZ:
            return _text(200, "ok")
        if kind is Kind.PODS:
            pods = [pod for node in visible.values() for pod in node.pods.values()]
            return web.json_response(documents.pod_list(pods))
        if kind is Kind.METRICS_RESOURCE:
            return web.Response(
                body=self._resource_metrics(visible),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )
        if kind is Kind.STATS_SUMMARY:
            if len(visible) != 1:
                names = ", ".join(sorted(visible)) or "none"
                return _text(
                    400,
                    f"this address serves several nodes ({names}); ask for one node's "
                    "summary through the API server: /api/v1/nodes/NODE/proxy/stats/summary",
                )
            node = next(iter(visible.values()))
            return web.json_response(documents.summary(node.name, node.pods.values()))
        if kind is Kind.STREAMING:
            if holder is None:
                return _text(404, "pod does not exist")
            return _text(501, documents.streaming_refusal(where.action))
        if kind is Kind.CONTAINER_LOGS:
            if where.problem:
                return _text(400, f'{{"message": "{where.problem}"}}')
            if holder is None:
                return _text(404, f'pod "{where.pod}" does not exist')
            return await self._logs(request, where, holder)
        return _text(404, "404 page not found")

    async def _logs(
        self, request: web.Request, where: Route, node: ServedNode
    ) -> web.StreamResponse:
        pod = node.pods.get(where.pod_key)
        if pod is None:  # gone while the request was being authorized
            return _text(404, f'pod "{where.pod}" does not exist')
        try:
            options = parse_log_options(request.query)
            where_log = log_plan.target(
                pod, where.container, node.project, previous=options.previous
            )
        except (OptionsRefused, Refused) as refused:
            return _text(refused.status, str(refused))
        budget = node.salad.limiter.budget
        if options.follow and not self._followers.take(budget):
            return _text(
                429,
                f"too many logs are followed with the SaladCloud API key of node {node.name} "
                f"({self._followers.limit} at most, as they share its request budget); "
                "try again later",
            )
        try:
            return await self._stream(request, where, node, where_log, options)
        finally:
            if options.follow:
                self._followers.release(budget)

    async def _stream(
        self,
        request: web.Request,
        where: Route,
        node: ServedNode,
        target: Target,
        options: LogOptions,
    ) -> web.StreamResponse:
        reader = LogReader(node.salad, metrics=self._metrics, now=self._now)
        now = reader.now()
        since = options.since(now)
        start = max(target.start, since) if since is not None else target.start
        state = FollowState.start(now)
        writer = LineWriter(options.timestamps, options.limit_bytes)
        try:
            if options.follow:
                # Before the first answer: what is received meanwhile then comes again
                # in the first poll, where it is recognised, rather than never.
                state = FollowState.start(now, await reader.received(target, start, state.cursor))
            entries = await reader.first_answer(
                target, options, now, remaining_bytes=options.limit_bytes
            )
        except (SaladUnavailable, SaladRateLimited) as error:
            return _text(503, f"salad-vk: SaladCloud did not answer the log query: {error}")
        except SaladError as error:
            return _text(502, f"salad-vk: SaladCloud refused the log query: {error}")
        response = web.StreamResponse(status=200, headers={"Content-Type": _TEXT})
        await response.prepare(request)
        write = _writer(response, self._metrics, writer)
        await write(writer.write(entries))
        if options.follow and not writer.exhausted:
            lower = start
            if options.tail_lines is not None:
                lower = entries[0].time if entries else now - FOLLOW_OVERLAP
            state = merge_handled(state, entries)

            def current() -> Target | None:
                return self._current_target(where, node.name, options.previous)

            def connected() -> bool:
                return request.transport is not None and not request.transport.is_closing()

            try:
                await follow(
                    reader,
                    target,
                    lower=lower,
                    state=state,
                    writer=writer,
                    write=write,
                    current=current,
                    connected=connected,
                    interval=self._options.follow_interval,
                )
            except (SaladError, ConnectionError) as error:
                log.info("a followed log ended: %s", error)
                return response
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    def _current_target(self, where: Route, node: str, previous: bool) -> Target | None:
        served = self._nodes().get(node)
        pod = served.pods.get(where.pod_key) if served is not None else None
        if served is None or pod is None:
            return None
        try:
            return log_plan.target(pod, where.container, served.project, previous=previous)
        except Refused:
            return None


def _holder(served: Mapping[str, ServedNode], pod_key: str) -> ServedNode | None:
    for node in served.values():
        if pod_key in node.pods:
            return node
    return None


def _writer(
    response: web.StreamResponse, metrics: KubeletMetrics, writer: LineWriter
) -> Callable[[bytes], Awaitable[None]]:
    counted = 0

    async def write(data: bytes) -> None:
        nonlocal counted
        metrics.log_lines.inc(writer.lines - counted)
        counted = writer.lines
        if data:
            await response.write(data)

    return write
