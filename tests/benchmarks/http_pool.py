"""What one SaladCloud request costs the event loop, for each HTTP stack we could use.

    python -m tests.benchmarks.http_pool                     # every stack installed here
    python -m tests.benchmarks.http_pool --stack httpx --concurrency 1000

At 1,000 nodes the supervisor starts (and, after an outage, resumes) with about a
thousand list calls at once against a pool of 100 connections. httpcore's pool
re-scans its whole queue against every connection for each request that enters or
leaves it, so a pass costs O(connections x queued) and a thousand of them O(n^2).
This benchmark sends ``--requests`` GETs, ``--concurrency`` at a time, to a local
server that answers after ``--delay`` seconds (a separate process, so the figures are
the client's alone), and prints the client's CPU per thousand requests, the rate,
and the p99 lag of a 50 ms timer on the client's event loop.

Stacks, each measured without and with the bounded in-flight window
(``nodes.saladcloud.transport.InFlightWindow``, sized to the pool) in front:

- ``httpx``: httpx 0.28 on httpcore 1.0, what the project used before;
- ``salad-vk``: the project's pool, httpx over ``AiohttpTransport``;
- ``httpx-aiohttp``: the ``httpx_aiohttp`` package's transport, if installed;
- ``httpx2``: the httpx successor with a linear pool, if installed (its window is a
  semaphore around each call: it is not an httpx transport).

Candidates that are not installed are skipped; neither is a dependency.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from typing import Any

import anyio

_STACKS = ("httpx", "salad-vk", "httpx-aiohttp", "httpx2")


def _serve(port: int, delay: float) -> None:
    """A tiny JSON server that answers every GET after ``delay`` seconds."""
    from aiohttp import web  # noqa: PLC0415 - only the server process needs it

    body = json.dumps({"items": [{"name": f"g{i}", "current_state": {}} for i in range(3)]})

    async def handler(_: web.Request) -> web.Response:
        await anyio.sleep(delay)
        return web.Response(text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(stack: str, connections: int, keepalive: int, window: bool) -> Any:
    """An httpx-like async client of ``stack``; optional stacks are imported here."""
    import httpx  # noqa: PLC0415 - each stack is imported only in its own process

    from nodes.saladcloud.transport import AiohttpTransport, InFlightWindow  # noqa: PLC0415

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=keepalive)
    transport: httpx.AsyncBaseTransport
    if stack == "httpx":
        transport = httpx.AsyncHTTPTransport(limits=limits)
    elif stack == "salad-vk":
        transport = AiohttpTransport(max_connections=connections, keepalive_expiry=5.0)
    elif stack == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport as Theirs  # noqa: PLC0415

        transport = Theirs(limits=limits, trust_env=False)
    elif stack == "httpx2":
        import httpx2  # noqa: PLC0415

        limits2 = httpx2.Limits(max_connections=connections, max_keepalive_connections=keepalive)
        return httpx2.AsyncClient(limits=limits2, timeout=60)
    else:
        raise ValueError(stack)
    if window:
        transport = InFlightWindow(transport, connections)
    return httpx.AsyncClient(transport=transport, timeout=60)


async def _measure(
    stack: str,
    url: str,
    requests: int,
    concurrency: int,
    connections: int,
    keepalive: int,
    window: bool,
) -> dict[str, float]:
    # httpx2 is not an httpx transport: its window is a semaphore around each call.
    gate = anyio.Semaphore(connections) if window and stack == "httpx2" else None
    sent = 0
    lags: list[float] = []

    async def probe() -> None:
        while True:
            before = time.monotonic()
            await anyio.sleep(0.05)
            lags.append(time.monotonic() - before - 0.05)

    async with _client(stack, connections, keepalive, window) as http:

        async def one() -> None:
            if gate is None:
                (await http.get(url)).raise_for_status()
                return
            async with gate:
                (await http.get(url)).raise_for_status()

        async def worker() -> None:
            nonlocal sent
            while sent < requests:
                sent += 1
                await one()

        async with anyio.create_task_group() as probes:
            probes.start_soon(probe)
            cpu, wall = time.process_time(), time.monotonic()
            async with anyio.create_task_group() as workers:
                for _ in range(concurrency):
                    workers.start_soon(worker)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            probes.cancel_scope.cancel()
    lags.sort()
    return {
        "cpu_ms_per_1000": 1000 * cpu / requests * 1000,
        "requests_per_s": requests / wall,
        "loop_lag_p99_s": lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
    }


def _available(stack: str) -> bool:
    module = {
        "httpx": "httpx",
        "salad-vk": "nodes.saladcloud.transport",
        "httpx-aiohttp": "httpx_aiohttp",
        "httpx2": "httpx2",
    }[stack]
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, check=False
    )
    return probe.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", choices=_STACKS, action="append")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--keepalive", type=int, default=20, help="idle connections kept")
    parser.add_argument("--delay", type=float, default=0.02, help="server answer delay, s")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        stack, url, window = args.one.split(",")
        figures = anyio.run(
            _measure,
            stack,
            url,
            args.requests,
            args.concurrency,
            args.connections,
            args.keepalive,
            window == "window",
        )
        print(json.dumps(figures))
        return
    port = _free_port()
    server = multiprocessing.Process(target=_serve, args=(port, args.delay), daemon=True)
    server.start()
    try:
        time.sleep(1.0)
        url = f"http://127.0.0.1:{port}/api/public/organizations/o/projects/p/containers"
        print(
            f"{args.requests} GETs, {args.concurrency} at a time, pool of {args.connections}"
            f" ({args.keepalive} kept alive), server delay {args.delay}s;"
            f" load {os.getloadavg()[0]:.2f}"
        )
        print(f"{'stack':<16}{'window':<8}{'CPU ms/1000 req':>16}{'req/s':>10}{'lag p99 s':>11}")
        for stack in args.stack or _STACKS:
            if not _available(stack):
                print(f"{stack:<16}(not installed, skipped)")
                continue
            for window in ("none", "window"):
                run = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "tests.benchmarks.http_pool",
                        "--one",
                        f"{stack},{url},{window}",
                        "--requests",
                        str(args.requests),
                        "--concurrency",
                        str(args.concurrency),
                        "--connections",
                        str(args.connections),
                        "--keepalive",
                        str(args.keepalive),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if run.returncode != 0:
                    print(f"{stack:<16}{window:<8}failed: {run.stderr.strip()[-400:]}")
                    continue
                f = json.loads(run.stdout.strip().splitlines()[-1])
                print(
                    f"{stack:<16}{window:<8}{f['cpu_ms_per_1000']:>16.0f}"
                    f"{f['requests_per_s']:>10.0f}{f['loop_lag_p99_s']:>11.3f}"
                )
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
