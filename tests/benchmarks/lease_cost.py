"""What one Lease renewal costs this process: CPU per compare-and-swap PUT.

    python -m tests.benchmarks.lease_cost --leases 100 --rounds 20

Creates ``--leases`` Leases on a loopback control plane and renews each of them
``--rounds`` times, all leases of a round concurrently, through the process's own
Kubernetes client, as the node Lease keepers do. Prints the CPU seconds this process
spent per PUT. It is the figure behind the choice of renewal cadence: 1,000 nodes
renewing every 10 s are 100 PUTs a second.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import anyio
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from nodes.node_object import micro_timestamp
from tests.controlplane import cluster

from . import common

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


async def _measure(plane: cluster.ControlPlane, leases: int, rounds: int) -> None:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(plane.kubeconfig), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = 0
    async with ApiClient(configuration=configuration) as api:
        kube = KubeClient(api, node="bench").unlimited()
        current = {}
        for i in range(leases):
            spec = {"holderIdentity": "bench/1", "renewTime": micro_timestamp(datetime.now(UTC))}
            current[i] = await kube.post(LEASES, {"metadata": {"name": f"cost-{i}"}, "spec": spec})

        async def renew(i: int) -> None:
            body = dict(current[i])
            body["spec"] = {**body["spec"], "renewTime": micro_timestamp(datetime.now(UTC))}
            current[i] = await kube.put(f"{LEASES}/cost-{i}", body)

        cpu, wall = common.own_cpu_seconds(), time.monotonic()
        for _ in range(rounds):
            async with anyio.create_task_group() as group:
                for i in range(leases):
                    group.start_soon(renew, i)
        cpu, wall = common.own_cpu_seconds() - cpu, time.monotonic() - wall
        for i in range(leases):
            await kube.delete(f"{LEASES}/cost-{i}")
    puts = leases * rounds
    common.report(
        "Lease renewal cost",
        {
            "PUTs": puts,
            "wall (s)": f"{wall:.1f}",
            "CPU of this process (s)": f"{cpu:.2f}",
            "CPU per PUT (ms)": f"{1000 * cpu / puts:.2f}",
            "1,000 nodes every 10 s (% of a core)": f"{100 * cpu / puts * 100:.0f}",
            "1,000 nodes every 5 s (% of a core)": f"{100 * cpu / puts * 200:.0f}",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leases", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with common.control_plane() as plane:
        anyio.run(_measure, plane, args.leases, args.rounds)


if __name__ == "__main__":
    main()
