"""N nodes over R ``salad-vk run`` replicas: balance, then kill -9 one, then SIGTERM one.

    python -m tests.benchmarks.failover --nodes 30 --pods-per-node 10 --replicas 3
    python -m tests.benchmarks.failover --nodes 300 --pods-per-node 1 --replicas 3

Starts a loopback control plane with a 40 s node-monitor grace (the shortest a real
cluster has), ``salad-vk simulate`` (one API key per project, the real 240
requests/min each) and R replicas, all as separate processes. Every half second for
the whole run it reads every node's Lease and Ready condition from the API server. It
prints: how the nodes are balanced, how long the pods took, the replicas' CPU and lease
writes in a steady window, then for a kill -9 in the middle of a scale-up the failover
time (kill to every node of the dead replica renewed by another) and for a SIGTERM the
handoff time, the largest gap between two renewals of any node's Lease over the whole
run, how often a node was not Ready, and duplicate or deleted container groups.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.manifests import workload

from . import common
from .fleet import _kube_factory

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


@dataclass
class Observed:
    """What the API server showed, look after look."""

    nodes: list[str]
    renewals: dict[str, datetime] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)
    phase: str = "start-up"
    gaps: dict[str, tuple[float, str]] = field(default_factory=dict)
    """Phase -> (largest gap between two renewals of a node's Lease, which node)."""
    not_ready: int = 0
    looks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def largest_gap(self) -> float:
        return max((gap for gap, _ in self.gaps.values()), default=0.0)

    def saw_lease(self, lease: dict[str, Any]) -> None:
        """One version of a node's Lease (from the watch: every version, in order)."""
        name = lease["metadata"]["name"]
        if name not in self.nodes:
            return
        spec = lease.get("spec") or {}
        with self.lock:
            if spec.get("renewTime"):
                at = datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
                before = self.renewals.get(name)
                if before is not None and at > before:
                    gap = (at - before).total_seconds()
                    if gap > self.gaps.get(self.phase, (0.0, ""))[0]:
                        self.gaps[self.phase] = (gap, name)
                if before is None or at > before:
                    self.renewals[name] = at
            self.holders[name] = str(spec.get("holderIdentity") or "").split("/")[0]

    def watch_leases(self, kube: httpx.Client, stop: threading.Event) -> None:
        """Every change of every node's Lease, from a watch, so that no renewal is missed
        however slow a look at the API server is."""
        while not stop.is_set():
            listed = kube.get(LEASES).json()
            for item in listed["items"]:
                self.saw_lease(item)
            version = listed["metadata"]["resourceVersion"]
            params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "60"}
            with (
                contextlib.suppress(httpx.HTTPError),
                kube.stream("GET", LEASES, params=params, timeout=None) as events,
            ):
                for line in events.iter_lines():
                    if stop.is_set():
                        return
                    if line:
                        event = json.loads(line)
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            self.saw_lease(event["object"])

    def look(self, kube: httpx.Client) -> None:
        for node in kube.get(
            "/api/v1/nodes", params={"labelSelector": "type=virtual-kubelet"}
        ).json()["items"]:
            if node["metadata"]["name"] not in self.nodes:
                continue
            for condition in node["status"].get("conditions") or []:
                if condition["type"] == "Ready" and condition["status"] != "True":
                    self.not_ready += 1
        self.looks += 1


def _running(kube: httpx.Client, namespace: str) -> int:
    answer = kube.get(f"/api/v1/namespaces/{namespace}/pods")
    answer.raise_for_status()
    found = answer.json()["items"]
    return sum(1 for p in found if (p.get("status") or {}).get("phase") == "Running")


def _watch_until(kube: httpx.Client, seen: Observed, done: Any, timeout: float) -> float:
    """Look at the Nodes every half second until ``done()``; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        seen.look(kube)
        if done():
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"not done within {timeout:.0f}s")


def _group_figures(sim_root: str, projects: list[str]) -> tuple[int, int]:
    """(pods with more than one live group, groups deleted) over ``projects``."""
    owners: collections.Counter[str] = collections.Counter()
    deleted = 0
    for project in projects:
        answer = httpx.get(
            f"{sim_root}/_simulator/organizations/{common.ORG}/projects/{project}/containers",
            timeout=30,
        )
        for group in answer.json()["items"]:
            if group["deleted"]:
                deleted += 1
                continue
            env = group["container"].get("environment_variables") or {}
            owners[env.get("SALAD_VK_POD_UID", "?")] += 1
    return sum(1 for count in owners.values() if count > 1), deleted


def run(
    nodes: int,
    pods_per_node: int,
    replicas: int,
    observe: float,
    time_scale: float,
    logs: Path | None = None,
) -> None:
    names = [f"fo-{i:03d}" for i in range(nodes)]
    projects = {name: (f"p{i:03d}", f"fo-key-{i:03d}-7d1c3e5a9b") for i, name in enumerate(names)}
    identities = [f"replica-{chr(ord('a') + i)}" for i in range(replicas)]
    with common.control_plane() as plane, tempfile.TemporaryDirectory() as scratch:
        work = logs or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        sim_port = common.free_port()
        sim_command = common.simulator_command(
            sim_port,
            [p for p, _ in projects.values()],
            [k for _, k in projects.values()],
            time_scale=time_scale,
            rate_limit=240,
        )
        kube = _kube_factory(plane)()
        namespace = "bench"
        kube.post("/api/v1/namespaces", json={"metadata": {"name": namespace}})
        with common.process(sim_command, work / "simulator.log"):
            sim_root = f"http://127.0.0.1:{sim_port}"
            common.wait_for(f"{sim_root}/_simulator/summary")
            config = common.write_projects(work, f"{sim_root}/api/public", projects, 10.0)
            ports = {identity: common.free_port() for identity in identities}
            started = time.monotonic()
            processes = {}
            with contextlib.ExitStack() as stack:
                for identity in identities:
                    command = common.salad_vk(
                        "run",
                        "--config",
                        str(config),
                        "--kubeconfig",
                        str(plane.kubeconfig),
                        "--metrics-address",
                        f"127.0.0.1:{ports[identity]}",
                        "--kubelet-address",
                        "127.0.0.1:0",
                        "--identity",
                        identity,
                        "--lease-namespace",
                        namespace,
                        "--log-format",
                        "json",
                    )
                    processes[identity] = stack.enter_context(
                        common.process(command, work / f"{identity}.log")
                    )
                seen = Observed(names)
                stop = threading.Event()
                # A thread of its own: the benchmark is synchronous, the watch is not.
                watcher = threading.Thread(
                    target=seen.watch_leases, args=(_kube_factory(plane)(), stop), daemon=True
                )
                watcher.start()
                stack.callback(stop.set)
                share = nodes // replicas

                def balanced() -> bool:
                    held = collections.Counter(seen.holders.values())
                    return all(abs(held[i] - nodes / replicas) < 1.0 + 1e-9 for i in identities)

                balance_after = _watch_until(kube, seen, balanced, 300)
                ready_after = time.monotonic() - started
                balance = dict(collections.Counter(seen.holders.values()))

                seen.phase = "pods"
                for name in names:
                    kube.post(
                        f"/apis/apps/v1/namespaces/{namespace}/deployments",
                        json=workload(name, pods_per_node, node=name),
                    ).raise_for_status()
                total = nodes * pods_per_node
                running_after = _watch_until(
                    kube, seen, lambda: _running(kube, namespace) >= total, 900
                )

                # A steady window: what each replica costs.
                urls = {i: f"http://127.0.0.1:{ports[i]}" for i in identities}
                before = {i: common.metrics(urls[i]) for i in identities}
                cpu_before = {i: common.usage(processes[i].pid).cpu_seconds for i in identities}
                window = time.monotonic()
                seen.phase = "steady"
                _watch_until(kube, seen, lambda: time.monotonic() - window >= observe, observe + 10)
                elapsed = time.monotonic() - window
                cpu = {
                    i: 100 * (common.usage(processes[i].pid).cpu_seconds - cpu_before[i]) / elapsed
                    for i in identities
                }
                after = {i: common.metrics(urls[i]) for i in identities}

                def lease_writes(identity: str) -> float:
                    family = "salad_vk_kubernetes_requests"
                    delta = common.counter_total(
                        after[identity][family], verb="PUT", resource="leases"
                    ) - common.counter_total(
                        before[identity][family], verb="PUT", resource="leases"
                    )
                    return delta / elapsed

                # kill -9 in the middle of a scale-up.
                victim = identities[0]
                its_nodes = [n for n, h in seen.holders.items() if h == victim]
                for name in its_nodes:
                    kube.patch(
                        f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
                        json={"spec": {"replicas": pods_per_node + 2}},
                        headers={"Content-Type": "application/merge-patch+json"},
                    ).raise_for_status()
                time.sleep(1.0)
                seen.phase = "kill -9"
                processes[victim].kill()
                failover = _watch_until(
                    kube,
                    seen,
                    lambda: all(seen.holders[n] not in ("", victim) for n in its_nodes),
                    120,
                )
                total += 2 * len(its_nodes)
                _watch_until(kube, seen, lambda: _running(kube, namespace) >= total, 600)

                # SIGTERM: a handoff of everything.
                leaving = identities[1] if replicas > 2 else None
                handoff = float("nan")
                if leaving is not None:
                    its_nodes = [n for n, h in seen.holders.items() if h == leaving]
                    seen.phase = "SIGTERM"
                    processes[leaving].terminate()
                    handoff = _watch_until(
                        kube,
                        seen,
                        lambda: all(seen.holders[n] not in ("", leaving) for n in its_nodes),
                        120,
                    )
                _watch_until(kube, seen, lambda: True, 1)
                duplicates, deleted = _group_figures(sim_root, [p for p, _ in projects.values()])

        common.report(
            f"{nodes} nodes x {pods_per_node} pods over {replicas} replicas",
            {
                "replicas joined and balanced after (s)": f"{balance_after:.1f}",
                "start to balanced (s)": f"{ready_after:.1f}",
                "nodes per replica": balance,
                f"{nodes * pods_per_node} pods Running after (s)": f"{running_after:.1f}",
                "steady window (s)": f"{elapsed:.0f}",
                "CPU per replica (% of a core)": {i: f"{cpu[i]:.1f}" for i in identities},
                "lease writes / s per replica": {i: f"{lease_writes(i):.2f}" for i in identities},
                f"kill -9 {victim}: its ~{share} nodes renewed by others after (s)": (
                    f"{failover:.1f}"
                ),
                f"SIGTERM {leaving}: its nodes renewed by others after (s)": f"{handoff:.1f}",
                "largest lease-renewal gap, whole run (s)": f"{seen.largest_gap:.1f}",
                "largest gap by phase (s, node)": {
                    phase: f"{gap:.1f} {node}" for phase, (gap, node) in seen.gaps.items()
                },
                "looks that found a node not Ready": seen.not_ready,
                "looks at the API server": seen.looks,
                "pods with more than one group": duplicates,
                "container groups deleted": deleted,
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--pods-per-node", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--observe", type=float, default=60.0, help="steady window, seconds")
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    args = parser.parse_args()
    run(args.nodes, args.pods_per_node, args.replicas, args.observe, args.time_scale, args.logs)


if __name__ == "__main__":
    main()
