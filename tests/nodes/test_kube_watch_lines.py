"""A watch line the client cannot read is a KubeError (the caller relists), never an
exception of aiohttp's own that would end the task reading the watch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeError
from supervisor.kube_environment import without_environment

pytestmark = pytest.mark.anyio

HUGE = 5 * 2**20
"""Over the 4 MiB a line may take in the client's read buffer."""


@asynccontextmanager
async def watch_server(*lines: bytes) -> AsyncIterator[str]:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for line in lines:
            await response.write(line + b"\n")
        return response

    app = web.Application()
    app.router.add_get("/api/v1/pods", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_an_oversized_watch_event_is_a_kube_error_after_the_events_before_it() -> None:
    small = b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}'
    huge = b'{"type":"MODIFIED","object":{"metadata":{"name":"' + b"b" * HUGE + b'"}}}'
    async with watch_server(small, huge) as url:
        api = without_environment(ApiClient(Configuration(host=url)))
        try:
            seen = []
            with pytest.raises(KubeError):
                async for kind, obj in KubeClient(api, node="test").watch(
                    "/api/v1/pods", {}, server_timeout=5
                ):
                    seen.append((kind, obj["metadata"]["name"]))
            assert seen == [("ADDED", "a")]
        finally:
            await api.close()
