"""Two small proxies the replica tests put between a process and what it talks to.

``CuttableProxy`` relays TCP (the API server's TLS passes through untouched) and can
stop relaying: bytes already in flight stay where they are, new connections are
accepted and then hear nothing. That is a network partition as the process sees it:
requests time out, nothing is refused. Healing closes the stalled connections (the
client opens new ones) and relays again.

``RecordingProxy`` is an HTTP reverse proxy in front of the SaladCloud simulator, one
per replica, so the test knows which replica sent which request and when it arrived.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import httpx
from aiohttp import web
from anyio.abc import ByteReceiveStream, SocketStream


class CuttableProxy:
    """TCP relay to ``upstream``; ``cut`` stops relaying, ``heal`` resumes it."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._resume: anyio.Event | None = None
        """Set while cut: relays wait for it."""
        self._connections: set[anyio.CancelScope] = set()
        self.port = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CuttableProxy]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        async with listener, anyio.create_task_group() as serving:
            serving.start_soon(listener.serve, self._handle)
            try:
                yield self
            finally:
                self.heal()
                serving.cancel_scope.cancel()

    def cut(self) -> None:
        """Stop relaying, in both directions, on every connection old and new."""
        if self._resume is None:
            self._resume = anyio.Event()

    def heal(self) -> None:
        """Drop the stalled connections (clients open new ones) and relay again."""
        for scope in list(self._connections):
            scope.cancel()
        resume, self._resume = self._resume, None
        if resume is not None:
            resume.set()

    async def _wait_if_cut(self) -> None:
        resume = self._resume
        if resume is not None:
            await resume.wait()

    async def _handle(self, client: SocketStream) -> None:
        with anyio.CancelScope() as scope:
            self._connections.add(scope)
            try:
                async with client:
                    await self._wait_if_cut()
                    upstream = await anyio.connect_tcp(*self._upstream)
                    async with upstream, anyio.create_task_group() as relays:
                        relays.start_soon(self._relay, client, upstream)
                        relays.start_soon(self._relay, upstream, client)
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            finally:
                self._connections.discard(scope)

    async def _relay(self, source: ByteReceiveStream, sink: SocketStream) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:
                chunk = await source.receive()
                await self._wait_if_cut()  # cut: the bytes wait here, as on a dead link
                await sink.send(chunk)
        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await sink.send_eof()


@dataclass(frozen=True)
class Recorded:
    at: float
    """``time.time()`` when the request reached the proxy."""
    method: str
    path: str
    status: int


@dataclass
class RecordingProxy:
    upstream: str
    """The simulator's base URL, ``http://127.0.0.1:PORT/api/public``."""
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RecordingProxy]:
        async with httpx.AsyncClient(timeout=60) as client:

            async def forward(request: web.Request) -> web.Response:
                arrived = time.time()
                body = await request.read()
                headers = {
                    k: v
                    for k, v in request.headers.items()
                    if k.lower() not in ("host", "content-length", "transfer-encoding")
                }
                answer = await client.request(
                    request.method,
                    self.upstream + "/" + request.match_info["tail"],
                    params=request.query,
                    headers=headers,
                    content=body,
                )
                self.requests.append(
                    Recorded(
                        arrived,
                        request.method,
                        "/" + request.match_info["tail"],
                        answer.status_code,
                    )
                )
                passed = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
                }
                return web.Response(status=answer.status_code, body=answer.content, headers=passed)

            app = web.Application()
            app.router.add_route("*", "/api/public/{tail:.*}", forward)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}/api/public"
            try:
                yield self
            finally:
                await runner.cleanup()
