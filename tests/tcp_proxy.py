"""A TCP proxy on loopback that a test can cut and heal: a network partition on demand.

It relays bytes untouched (the API server's TLS passes through). Cut, it stops
relaying in both directions on every connection, old and new, and holds new
connections without connecting them: the way a partition looks to both ends, with
no reset and no error, only silence until timeouts fire. Healed, it relays again
and what was held flows on, as it would over a link that came back before TCP gave
up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import ByteStream, SocketStream


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
                await self._open.wait()  # cut: the bytes wait here, as on a dead link
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
                return  # nothing listens there (yet): the client sees its connection close
            async with upstream, anyio.create_task_group() as pumps:
                pumps.start_soon(self._pump, client, upstream)
                pumps.start_soon(self._pump, upstream, client)


@asynccontextmanager
async def tcp_proxy(
    target_host: str, target_port: int, *, port: int = 0
) -> AsyncIterator[TcpProxy]:
    """A proxy listening on loopback ``port`` (a free one by default) until the block ends."""
    proxy = TcpProxy(target_host, target_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    proxy.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, proxy._serve, group)
        try:
            yield proxy
        finally:
            proxy.heal()
            group.cancel_scope.cancel()
