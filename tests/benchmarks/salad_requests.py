"""What one SaladCloud list costs this process: CPU per request through the node's
client (limiter, retries, metrics, httpx, the in-flight window, aiohttp).

    python -m tests.benchmarks.salad_requests --requests 3000 --nodes 50

Starts ``salad-vk simulate`` in a process of its own (so that its CPU is not counted),
creates one group, and has ``--nodes`` clients list it ``--requests`` times in all,
concurrently, as the nodes' polls do. Prints the CPU seconds of this process per
list; ``--profile N`` also prints the N functions with the most cumulative time under
cProfile (which makes every call several times slower: compare shares, not times).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

import anyio
import httpx
from prometheus_client import CollectorRegistry

from nodes.metrics import NodeMetrics
from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.transport import saladcloud_http_client
from tests.saladcloud.builders import client, prototype

from . import common

_PROJECT, _KEY = "bench-project", "bench-key"


async def _measure(url: str, requests: int, nodes: int, profile: int) -> None:
    limits = httpx.Limits(max_connections=100)
    async with saladcloud_http_client(limits, httpx.Timeout(30.0), environ={}) as http:
        metrics = NodeMetrics(CollectorRegistry())
        salads = [
            client(
                http,
                url,
                KeyBudget(1_000_000),
                node=f"bench-{index}",
                key=_KEY,
                organization=common.ORG,
                project=_PROJECT,
                metrics=metrics,
            )
            for index in range(nodes)
        ]
        await salads[0].create_container_group(prototype("bench-group"))
        each = max(1, requests // nodes)

        async def lists() -> float:
            async def node(index: int) -> None:
                for _ in range(each):
                    await salads[index].list_container_groups()

            started = common.own_cpu_seconds()
            async with anyio.create_task_group() as group:
                for index in range(nodes):
                    group.start_soon(node, index)
            return common.own_cpu_seconds() - started

        await lists()  # connections opened, caches warm
        cpu = await lists()
        figures = {
            "lists": each * nodes,
            "CPU of this process (s)": f"{cpu:.2f}",
            "CPU per list (ms)": f"{1000 * cpu / (each * nodes):.3f}",
            "1,000 nodes every 10 s (% of a core)": f"{100 * cpu / (each * nodes) * 100:.1f}",
        }
        common.report("SaladCloud list cost", figures)
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await lists()
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(profile)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    args = parser.parse_args()
    port = common.free_port()
    command = common.simulator_command(port, [_PROJECT], [_KEY], rate_limit=1_000_000)
    with (
        tempfile.TemporaryDirectory(prefix="salad-vk-bench-") as folder,
        common.process(command, Path(folder) / "simulator.log"),
    ):
        url = f"http://127.0.0.1:{port}/api/public"
        common.wait_for(f"{url}/organizations/{common.ORG}/gpu-classes")
        anyio.run(_measure, url, args.requests, args.nodes, args.profile)


if __name__ == "__main__":
    main()
