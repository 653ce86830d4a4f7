"""The process-wide HTTP pool for SaladCloud: httpx in front, aiohttp underneath, and
a bounded in-flight window between them.

Why not httpx's own pool (httpcore 1.0): every request that enters or leaves it
re-scans the whole queue against every connection, probes each idle socket with a
syscall, and looks for an absent module on disk, so a thousand nodes' list calls
at start-up made the scan itself the process's main work (79 % of CPU at 1,000
nodes) and requests timed out waiting in it. Measured by
``python -m tests.benchmarks.http_pool``: at a thousand requests against a pool of
a hundred, httpcore cost ~1.9 ms of CPU per request even behind a window (and hit
its pool timeout without one), httpx2's linear pool ~1 ms, aiohttp's pool
~0.4-0.5 ms with or without a window. aiohttp is already here (the Kubernetes
client runs on it), so it carries the requests; httpx stays the interface, so the
client code, its error handling and respx-based tests are unchanged.

The window (``InFlightWindow``) is the other half: the per-key budget decides *when*
a request may go, the window *how many* are inside the pool at once, never more
than its connections. Requests beyond that wait in a FIFO in front of it (O(1) per
request), bounded by the pool timeout, so a stalled server cannot make the pool's
own bookkeeping grow with the number of nodes.

The environment is read once, when the pool is built: proxies (``HTTPS_PROXY``,
``NO_PROXY``, ...) and the CA bundle (``SSL_CERT_FILE``/``SSL_CERT_DIR``, else
certifi), as httpx would, but never again per request.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from http.cookiejar import Cookie, CookieJar
from typing import Any

import aiohttp
import anyio
import httpx
from yarl import URL

from ..proxies import EnvironmentProxies

__all__ = ["AiohttpTransport", "InFlightWindow", "saladcloud_http_client"]

# aiohttp computes these from the body it is given; passing httpx's copies could
# contradict it.
_COMPUTED_HEADERS = frozenset({"content-length", "transfer-encoding"})


class _ReleaseOnClose(httpx.AsyncByteStream):
    """A response body that gives its window slot back when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


BEFORE_SEND = "salad_vk.before_send"
"""Request extension: a callable the window calls once the request has its slot, just
before it goes to the pool; what it raises, the request raises, unsent."""


class InFlightWindow(httpx.AsyncBaseTransport):
    """At most ``size`` requests inside ``inner`` at once; the rest wait in line.

    A request holds its slot from sending until its response is closed (httpx
    closes it once the body is read). Waiting for a slot counts against the
    request's pool timeout and ends as ``httpx.PoolTimeout``, so a caller sees the
    same error it would have seen waiting inside the pool.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, size: int) -> None:
        if size < 1:
            raise ValueError(f"the window must hold at least one request, got {size}")
        self._inner = inner
        self._size = size
        self._slots = anyio.Semaphore(size)

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_flight(self) -> int:
        """Requests inside the pool right now."""
        return self._size - self._slots.value

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            # A free slot is taken without a timer: at a thousand nodes a cancel scope
            # per request was 7 % of the process's CPU.
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            pool_timeout = (request.extensions.get("timeout") or {}).get("pool")
            try:
                with anyio.fail_after(pool_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout(
                    f"no free connection within {pool_timeout}s ({self._size} requests in flight)",
                    request=request,
                ) from None
        try:
            # A request may have a last word once its slot is free (the node's ownership
            # gate): waiting for the slot can take longer than ownership lasts.
            last_word = request.extensions.get(BEFORE_SEND)
            if last_word is not None:
                last_word()
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._slots.release()
            raise
        if response.is_closed:
            # Built from bytes already read (``Response(content=...)``): nothing is
            # left in the pool for it.
            self._slots.release()
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ReleaseOnClose(response.stream, self._slots.release)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _client_timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts in aiohttp's terms (aiohttp has no write timeout;
    our request bodies are a few KiB)."""
    timeout: dict[str, float | None] = request.extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.get("pool"),
        sock_connect=timeout.get("connect"),
        sock_read=timeout.get("read"),
    )


def _mapped(error: Exception, request: httpx.Request) -> httpx.TransportError:
    """aiohttp's exception as the httpx one that means the same to a caller.

    What matters to ``SaladClient``: whether the request may have reached the
    server (a connect failure or timeout means it did not).
    """
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(error, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(error, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(message, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message, request=request)
    if isinstance(error, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message, request=request)
    if isinstance(error, aiohttp.ClientPayloadError | aiohttp.ClientOSError | OSError):
        return httpx.ReadError(message, request=request)
    return httpx.TransportError(message, request=request)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx requests carried by one aiohttp session (HTTP/1.1, keep-alive pool).

    The whole body is read before the response is returned: SaladCloud answers are
    small JSON documents, and a connection that is back in the pool as soon as the
    request ends is what keeps the pool's size the window's size.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float | None,
        verify: ssl.SSLContext | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive_expiry
        self._ssl = verify if verify is not None else httpx.create_ssl_context()
        self._proxies = EnvironmentProxies(os.environ if environ is None else environ)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # A session belongs to the running event loop: made on first use, not before.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive if self._keepalive else None,
                force_close=self._keepalive == 0,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # read once, above; never per request
                cookie_jar=aiohttp.DummyCookieJar(),  # no cookies: see _KeyedClient
                auto_decompress=False,  # httpx decodes by Content-Encoding
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower().decode("latin-1") not in _COMPUTED_HEADERS
        ]
        body = await request.aread()
        options: dict[str, Any] = {
            "headers": headers,
            "data": body or None,
            "allow_redirects": False,  # httpx follows redirects itself, if asked
            "timeout": _client_timeout(request),
            "proxy": self._proxies.for_origin(
                request.url.scheme, request.url.host, request.url.port
            ),
        }
        try:
            async with session.request(
                request.method, URL(str(request.url), encoded=True), **options
            ) as answer:
                content = await answer.read()
                status, reason = answer.status, answer.reason or ""
                raw_headers = list(answer.raw_headers)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise _mapped(error, request) from error
        return httpx.Response(
            status,
            headers=raw_headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1")},
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _RefusingJar(CookieJar):
    def set_cookie(self, cookie: Cookie) -> None:
        raise TypeError(_NO_COOKIES)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing: what a response sets is dropped unread, and a
    cookie set by hand, through the jar or around it, is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.jar = _RefusingJar()

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


_NO_COOKIES = "the SaladCloud client keeps no cookies: the API key authenticates"


class _KeyedClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` without a cookie jar.

    SaladCloud authenticates every request by its key, and this one client carries
    every node's requests, under every tenant's key: a jar would send what the API set
    on one key's answer with the requests of all the others. It would also cost more
    than anything else httpx does per request: extracting cookies builds a urllib
    request and response around every answer, about a tenth of the CPU of a list
    (``python -m tests.benchmarks.salad_requests``).
    """

    _jar = _NoCookies()
    """Shared by every instance: it can hold nothing."""

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError(_NO_COOKIES)


def saladcloud_http_client(
    limits: httpx.Limits,
    timeout: httpx.Timeout,
    *,
    environ: Mapping[str, str] | None = None,
    verify: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """The one SaladCloud HTTP client of the process (the caller closes it).

    ``limits.max_connections`` sizes both the pool and the window in front of it;
    ``limits.keepalive_expiry`` is how long an idle connection is kept (aiohttp has
    no cap on the number kept idle: at most the pool's size are). ``environ`` is
    where proxy variables are read, once (default: the process environment).
    """
    connections = limits.max_connections or 100
    pool = AiohttpTransport(
        max_connections=connections,
        keepalive_expiry=limits.keepalive_expiry,
        verify=verify,
        environ=environ,
    )
    # trust_env=False: httpx would otherwise mount its own (httpcore) proxy transports
    # from the environment, around ours; the proxy is chosen by our transport instead.
    return _KeyedClient(
        transport=InFlightWindow(pool, connections), timeout=timeout, trust_env=False
    )
