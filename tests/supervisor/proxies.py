"""An HTTP reverse proxy in front of the SaladCloud simulator, one per replica, so a
test knows which replica sent which request and when it arrived."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from aiohttp import web


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
