"""The SaladCloud HTTP pool: the in-flight window in front of it, and httpx carried
over aiohttp to real loopback servers (answers, errors, timeouts, proxies)."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
import respx
from aiohttp import web

from nodes.proxies import EnvironmentProxies
from nodes.saladcloud.transport import AiohttpTransport, InFlightWindow, saladcloud_http_client

pytestmark = pytest.mark.anyio


class Concurrency:
    """Counts the requests inside the inner transport at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.release = anyio.Event()

    async def answer(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await self.release.wait()
        finally:
            self.now -= 1
        return httpx.Response(200, json={"path": request.url.path})


async def test_the_window_never_lets_more_requests_into_the_pool_than_its_size() -> None:
    seen = Concurrency()
    router = respx.MockRouter(assert_all_called=False)
    router.get(url__startswith="https://pool.test/").mock(side_effect=seen.answer)
    window = InFlightWindow(httpx.MockTransport(router.async_handler), size=5)
    answers: list[int] = []
    async with httpx.AsyncClient(transport=window) as http:

        async def one(n: int) -> None:
            answers.append((await http.get(f"https://pool.test/{n}")).status_code)

        async with anyio.create_task_group() as group:
            for n in range(50):
                group.start_soon(one, n)
            await anyio.wait_all_tasks_blocked()
            assert seen.now == 5
            assert window.in_flight == 5
            seen.release.set()
    assert seen.most == 5
    assert answers == [200] * 50
    assert window.in_flight == 0


async def test_a_request_waiting_past_the_pool_timeout_gets_a_pool_timeout() -> None:
    seen = Concurrency()
    router = respx.MockRouter(assert_all_called=False)
    router.get(url__startswith="https://pool.test/").mock(side_effect=seen.answer)
    window = InFlightWindow(httpx.MockTransport(router.async_handler), size=1)
    timeout = httpx.Timeout(5, pool=0.05)
    async with (
        httpx.AsyncClient(transport=window, timeout=timeout) as http,
        anyio.create_task_group() as group,
    ):
        group.start_soon(http.get, "https://pool.test/first")
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(httpx.PoolTimeout, match="1 requests in flight"):
            await http.get("https://pool.test/second")
        seen.release.set()
    assert window.in_flight == 0


async def test_a_failed_or_cancelled_request_gives_its_slot_back() -> None:
    router = respx.MockRouter(assert_all_called=False)
    router.get("https://pool.test/broken").mock(side_effect=httpx.ConnectError("refused"))
    seen = Concurrency()
    router.get("https://pool.test/slow").mock(side_effect=seen.answer)
    window = InFlightWindow(httpx.MockTransport(router.async_handler), size=2)
    async with httpx.AsyncClient(transport=window) as http:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await http.get("https://pool.test/broken")
        with anyio.move_on_after(0.05):
            await http.get("https://pool.test/slow")
    assert window.in_flight == 0


async def test_a_streamed_response_holds_its_slot_until_it_is_closed() -> None:
    async def streamed(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b"x" * 100))  # not read yet

    window = InFlightWindow(httpx.MockTransport(streamed), size=3)
    async with httpx.AsyncClient(transport=window) as http:
        async with http.stream("GET", "https://pool.test/body") as response:
            assert window.in_flight == 1
            assert len(await response.aread()) == 100
        assert window.in_flight == 0


def test_a_window_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        InFlightWindow(httpx.MockTransport(respx.MockRouter().async_handler), size=0)


# --- the aiohttp-carried pool against real servers on loopback ---------------------------


@asynccontextmanager
async def serving(handler: Callable[[web.Request], object]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def pool(**timeouts: float) -> AsyncIterator[httpx.AsyncClient]:
    client = saladcloud_http_client(
        httpx.Limits(max_connections=4, keepalive_expiry=5.0),
        httpx.Timeout(**{"timeout": 5.0, **timeouts}),
        environ={},
    )
    async with client:
        yield client


async def test_requests_and_answers_pass_through_unchanged() -> None:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.raw_path,
                "type": request.headers.get("Content-Type"),
                "key": request.headers.get("Salad-Api-Key"),
                "body": body.decode(),
                "length": request.headers.get("Content-Length"),
            },
            status=201,
            reason="Made",
            headers={"Retry-After": "7"},
        )

    async with serving(echo) as url, pool() as http:
        answer = await http.patch(
            f"{url}/api/public/organizations/o/projects/p/containers/a%2Fb?x=1",
            content=b'{"replicas":1}',
            headers={"Salad-Api-Key": "k", "Content-Type": "application/merge-patch+json"},
        )
    assert answer.status_code == 201
    assert answer.reason_phrase == "Made"
    assert answer.headers["Retry-After"] == "7"
    assert answer.json() == {
        "method": "PATCH",
        "path": "/api/public/organizations/o/projects/p/containers/a%2Fb?x=1",
        "type": "application/merge-patch+json",
        "key": "k",
        "body": '{"replicas":1}',
        "length": "14",
    }


async def test_a_cookie_one_tenant_was_given_is_never_sent_with_any_request() -> None:
    async def tracker(request: web.Request) -> web.Response:
        answer = web.json_response({"cookie": request.headers.get("Cookie")})
        answer.set_cookie("session", request.headers.get("Salad-Api-Key", ""))
        return answer

    async with serving(tracker) as url, pool() as http:
        first = await http.get(f"{url}/a", headers={"Salad-Api-Key": "tenant-a"})
        second = await http.get(f"{url}/b", headers={"Salad-Api-Key": "tenant-b"})
        assert "session=tenant-a" in first.headers["Set-Cookie"]
        assert second.json() == {"cookie": None}
        assert not http.cookies
        with pytest.raises(TypeError, match="no cookies"):
            http.cookies = {"session": "x"}
        with pytest.raises(TypeError, match="no cookies"):
            http.cookies.set("session", "x")
        with pytest.raises(TypeError, match="no cookies"):
            http.cookies["session"] = "x"
        with pytest.raises(TypeError, match="no cookies"):
            http.cookies.update({"session": "x"})
        with pytest.raises(TypeError, match="no cookies"):
            http.cookies.jar.set_cookie(next(iter(first.cookies.jar)))
        assert not http.cookies


async def test_a_compressed_answer_is_decoded_once() -> None:
    document = {"items": [{"name": f"g{i}"} for i in range(50)]}

    async def gzipped(_: web.Request) -> web.Response:
        body = gzip.compress(json.dumps(document).encode())
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async with serving(gzipped) as url, pool() as http:
        answer = await http.get(f"{url}/list")
    assert answer.json() == document


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with pool() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_a_server_that_accepts_and_never_answers_is_a_read_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        async with pool(read=0.2) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(f"http://127.0.0.1:{port}/")


async def test_a_server_that_hangs_up_mid_answer_is_a_protocol_error() -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    async with serving(hang_up) as url, pool() as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await http.get(f"{url}/")


async def test_the_proxy_comes_from_the_environment_read_once() -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"via": "proxy"})

    async with serving(proxy) as proxy_url:
        environ = {"HTTP_PROXY": proxy_url, "NO_PROXY": "direct.test"}
        transport = AiohttpTransport(max_connections=2, keepalive_expiry=1.0, environ=environ)
        environ["HTTP_PROXY"] = "http://127.0.0.1:1"  # too late: it was read already
        async with httpx.AsyncClient(transport=transport, trust_env=False) as http:
            answer = await http.get("http://api.salad.test/api/public/x")
    assert answer.json() == {"via": "proxy"}
    assert seen == ["http://api.salad.test/api/public/x"]


def test_proxy_variables_follow_urllib_rules() -> None:
    proxies = EnvironmentProxies(
        {
            "HTTPS_PROXY": "http://upper:3128",
            "https_proxy": "http://lower:3128",
            "no_proxy": "kubernetes.default.svc,.internal",
            "ALL_PROXY": "",
        }
    )
    assert proxies.for_url("https://api.salad.com/api/public") == "http://lower:3128"
    assert proxies.for_url("https://kubernetes.default.svc:443") is None
    assert proxies.for_url("https://etcd.internal") is None
    assert proxies.for_url("http://api.salad.com/") is None
    assert EnvironmentProxies({}).for_url("https://api.salad.com") is None


def test_no_proxy_takes_hosts_domains_ports_and_a_star() -> None:
    proxies = EnvironmentProxies(
        {"https_proxy": "http://p:3128", "no_proxy": " .svc , 10.0.0.1, example.com:443"}
    )
    assert proxies.for_url("https://kubernetes.default.svc") is None
    assert proxies.for_url("https://10.0.0.1:6443") is None
    assert proxies.for_url("https://api.example.com") is None
    assert proxies.for_url("https://notexample.com") == "http://p:3128"
    assert EnvironmentProxies({"https_proxy": "x", "NO_PROXY": "*"}).for_url("https://a") is None
