"""N virtual nodes with M pods each, in one ``salad-vk run`` process: what does it cost?

    python -m tests.benchmarks.fleet --nodes 50 --pods-per-node 10     # the supervisor at scale
    python -m tests.benchmarks.fleet --nodes 1 --pods-per-node 100     # one full node, steady

Starts a loopback control plane, ``salad-vk simulate`` (one API key per project, the
real 240 requests/min each) and ``salad-vk run`` as separate processes, so the figures
are the supervisor's alone. It times nodes Ready and pods Running, then watches a
steady window and prints: the largest gap between two renewals of any node's Lease
(read from the API server), event-loop lag p99 (the process's own histogram), RSS
and CPU of the supervisor, SaladCloud requests per minute per node, and Kubernetes
writes per minute per node.
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from tests.controlplane import cluster
from tests.manifests import workload

from . import common

WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def _kube(plane: cluster.ControlPlane) -> httpx.Client:
    config = json.loads(plane.kubeconfig.read_text())
    user = config["users"][0]["user"]
    folder = plane.dir / "bench-client"
    folder.mkdir(exist_ok=True)
    (folder / "ca.crt").write_bytes(
        base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    )
    (folder / "client.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (folder / "client.key").write_bytes(base64.b64decode(user["client-key-data"]))
    tls = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    tls.load_cert_chain(str(folder / "client.crt"), str(folder / "client.key"))
    return httpx.Client(base_url=plane.server, verify=tls, timeout=30)


def _renewals(kube: httpx.Client) -> dict[str, datetime]:
    leases = kube.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases").json()
    return {
        item["metadata"]["name"]: datetime.fromisoformat(
            item["spec"]["renewTime"].replace("Z", "+00:00")
        )
        for item in leases["items"]
        if item["metadata"]["name"].startswith("bench-")
    }


def _running(kube: httpx.Client, namespace: str) -> int:
    answer = kube.get(f"/api/v1/namespaces/{namespace}/pods")
    answer.raise_for_status()
    found = answer.json()["items"]
    return sum(1 for p in found if (p.get("status") or {}).get("phase") == "Running")


def run(nodes: int, pods_per_node: int, observe: float, time_scale: float) -> None:
    names = [f"bench-{i:03d}" for i in range(nodes)]
    projects = {
        name: (f"p{i:03d}", f"bench-key-{i:03d}-0c3e5a7f9b1d") for i, name in enumerate(names)
    }
    with common.control_plane() as plane, tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        sim_port, metrics_port = common.free_port(), common.free_port()
        sim_command = common.simulator_command(
            sim_port,
            [p for p, _ in projects.values()],
            [k for _, k in projects.values()],
            time_scale=time_scale,
            rate_limit=240,
        )
        with common.process(sim_command, work / "simulator.log"):
            common.wait_for(f"http://127.0.0.1:{sim_port}/_simulator/summary")
            config = common.write_projects(
                work, f"http://127.0.0.1:{sim_port}/api/public", projects
            )
            supervisor_command = common.salad_vk(
                "run",
                "--config",
                str(config),
                "--kubeconfig",
                str(plane.kubeconfig),
                "--metrics-address",
                f"127.0.0.1:{metrics_port}",
                "--kubelet-address",
                "127.0.0.1:0",
                "--log-format",
                "json",
            )
            url = f"http://127.0.0.1:{metrics_port}"
            kube = _kube(plane)
            namespace = "bench"
            kube.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
            started = time.monotonic()
            with common.process(supervisor_command, work / "salad-vk.log") as supervisor:
                common.wait_for(f"{url}/healthz")
                while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
                    time.sleep(0.2)
                ready_after = time.monotonic() - started
                for name in names:
                    kube.post(
                        f"/apis/apps/v1/namespaces/{namespace}/deployments",
                        json=workload(name, pods_per_node, node=name),
                    )
                burst = time.monotonic()
                total = nodes * pods_per_node
                while _running(kube, namespace) < total:
                    time.sleep(1)
                running_after = time.monotonic() - burst

                before = common.metrics(url)
                cpu_before, window_start = common.usage(supervisor.pid), time.monotonic()
                last: dict[str, datetime] = {}
                largest_gap = 0.0
                rss = 0.0
                while time.monotonic() - window_start < observe:
                    for node, at in _renewals(kube).items():
                        if node in last and at != last[node]:
                            largest_gap = max(largest_gap, (at - last[node]).total_seconds())
                        last[node] = at
                    rss = max(rss, common.usage(supervisor.pid).rss_mib)
                    time.sleep(1)
                elapsed = time.monotonic() - window_start
                cpu = common.usage(supervisor.pid).cpu_seconds - cpu_before.cpu_seconds
                after = common.metrics(url)

        def per_node_minute(family: str, **labels: str) -> float:
            delta = common.counter_total(after[family], **labels) - common.counter_total(
                before[family], **labels
            )
            return delta / nodes / (elapsed / 60)

        writes = sum(
            per_node_minute("salad_vk_kubernetes_requests", verb=verb) for verb in WRITE_VERBS
        )
        salad_rate = per_node_minute("salad_vk_saladcloud_requests")
        common.report(
            f"{nodes} nodes x {pods_per_node} pods",
            {
                "nodes Ready after (s)": f"{ready_after:.1f}",
                f"{total} pods Running after (s)": f"{running_after:.1f}",
                "steady window (s)": f"{elapsed:.0f}",
                "largest lease-renewal gap (s)": f"{largest_gap:.1f}",
                "event-loop lag p99 (s, bucket bound)": common.histogram_quantile(
                    after["salad_vk_event_loop_lag_seconds"], 0.99
                ),
                "supervisor RSS max (MiB)": f"{rss:.0f}",
                "supervisor CPU in window (% of one core)": f"{100 * cpu / elapsed:.1f}",
                "SaladCloud requests / min / node": f"{salad_rate:.1f}",
                "Kubernetes writes / min / node": f"{writes:.1f}",
                "429s seen": common.counter_total(after["salad_vk_saladcloud_rate_limited"]),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--pods-per-node", type=int, default=10)
    parser.add_argument("--observe", type=float, default=120.0, help="steady window, seconds")
    parser.add_argument("--time-scale", type=float, default=60.0)
    args = parser.parse_args()
    run(args.nodes, args.pods_per_node, args.observe, args.time_scale)


if __name__ == "__main__":
    main()
