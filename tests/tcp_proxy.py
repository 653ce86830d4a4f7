"""A TCP proxy on loopback that a test can cut and heal: a network partition on demand.

Cut, it stops forwarding in both directions and holds new connections without
connecting them, the way a partition looks to both ends: no reset, no error, just
silence until timeouts fire. Healed, it forwards again (what was held flows on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import ByteStream, SocketStream, TaskGroup


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._open = anyio.Event()
        self._open.set()
        self.port = 0

    @property
    def cut_off(self) -> bool:
        return not self._open.is_set()

    def cut(self) -> None:
        if self._open.is_set():
            self._open = anyio.Event()

    def heal(self) -> None:
        self._open.set()

    async def _pump(self, source: ByteStream, sink: ByteStream) -> None:
        try:
            async for chunk in source:
                await self._open.wait()
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            await sink.aclose()

    async def _serve(self, client: SocketStream) -> None:
        async with client:
            await self._open.wait()
            try:
                upstream = await anyio.connect_tcp(*self._target)
            except OSError:
                return
            async with upstream, anyio.create_task_group() as pumps:
                pumps.start_soon(self._pump, client, upstream)
                pumps.start_soon(self._pump, upstream, client)

    async def _accept(self, group: TaskGroup, listener: anyio.abc.Listener[SocketStream]) -> None:
        await listener.serve(self._serve, task_group=group)


@asynccontextmanager
async def tcp_proxy(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    """A proxy listening on a free loopback port until the block ends."""
    proxy = TcpProxy(target_host, target_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as group:
        group.start_soon(proxy._accept, group, listener)
        try:
            yield proxy
        finally:
            proxy.heal()
            group.cancel_scope.cancel()
