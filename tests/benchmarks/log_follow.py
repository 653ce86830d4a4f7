"""``kubectl logs -f`` over a long steady log: is any line lost or repeated, how late?

    python -m tests.benchmarks.log_follow                   # 5 minutes, 2 lines/s
    python -m tests.benchmarks.log_follow --duration 60 --rate 20

Starts a loopback control plane, ``salad-vk simulate`` (the real 240 requests/min per
key; lines received up to ``--lag`` seconds late, so some arrive after later ones) and
``salad-vk run`` as separate processes, runs one pod, and follows its log with
``kubectl logs -f`` through the API server while its container writes ``--rate``
lines per second for ``--duration`` seconds. Then the writing stops, the last lines
are let in, and kubectl gets Ctrl-C. It prints: lines written and shown, lost and
repeated (compared with what the simulator wrote), how late lines were shown after
SaladCloud received them, SaladCloud log queries per minute while following and after
Ctrl-C, and the supervisor's CPU. It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

from nodes.translate.names import container_group_name
from tests.manifests import CONTAINER, TOLERATION

from . import common
from .fleet import _kube_factory

NODE = "bench-logs"
PROJECT = "logs"
KEY = "bench-key-logs-5e7a9c1b3d"


def _routable_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])


def _kubectl() -> str:
    return shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"


def _log_queries(control: str) -> list[float]:
    records = httpx.get(f"{control}/requests", timeout=30).json()
    return [r["wall"] for r in records if r["path"].endswith("/log-entries")]


def run(duration: float, rate: float, lag: float, interval: float) -> None:
    address = _routable_address()
    with common.control_plane() as plane, tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        sim_port, metrics_port, kubelet_port = (common.free_port() for _ in range(3))
        control = f"http://127.0.0.1:{sim_port}/_simulator"
        sim_command = common.simulator_command(
            sim_port,
            [PROJECT],
            [KEY],
            time_scale=60,
            rate_limit=240,
            log_rate=0,
            log_lag=lag,
        )
        kube = _kube_factory(plane)()
        with common.process(sim_command, work / "simulator.log"):
            common.wait_for(f"{control}/summary")
            config = common.write_projects(
                work, f"http://127.0.0.1:{sim_port}/api/public", {NODE: (PROJECT, KEY)}, 5.0
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
                f"0.0.0.0:{kubelet_port}",
                "--kubelet-follow-interval-seconds",
                str(interval),
            )
            url = f"http://127.0.0.1:{metrics_port}"
            env = {"POD_IP": address}
            with common.process(supervisor_command, work / "salad-vk.log", env) as supervisor:
                common.wait_for(f"{url}/healthz")
                while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
                    time.sleep(0.2)
                pod = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "writer"},
                    "spec": {
                        "nodeName": NODE,
                        "tolerations": [TOLERATION],
                        "containers": [CONTAINER],
                    },
                }
                created = kube.post("/api/v1/namespaces/default/pods", json=pod).json()
                group = container_group_name("default", "writer", created["metadata"]["uid"])
                while True:
                    found = kube.get("/api/v1/namespaces/default/pods/writer").json()
                    if (found.get("status") or {}).get("phase") == "Running":
                        break
                    time.sleep(0.5)
                time.sleep(3)

                shown: list[tuple[datetime, str]] = []
                follower = subprocess.Popen(
                    [_kubectl(), "logs", "-f", "writer"],
                    stdout=subprocess.PIPE,
                    env={**os.environ, "KUBECONFIG": str(plane.kubeconfig)},
                )

                def read() -> None:
                    assert follower.stdout is not None
                    for raw in follower.stdout:
                        shown.append((datetime.now(UTC), raw.decode().rstrip("\n")))

                reader = threading.Thread(target=read, daemon=True)
                reader.start()
                time.sleep(2)
                cpu_before = common.usage(supervisor.pid).cpu_seconds
                httpx.post(f"{control}/logs", json={"rate": rate}, timeout=10)
                writing = time.monotonic()
                time.sleep(duration)
                httpx.post(f"{control}/logs", json={"rate": 0}, timeout=10)
                wrote_for = time.monotonic() - writing
                time.sleep(lag + 3 * interval + 1)
                cpu = common.usage(supervisor.pid).cpu_seconds - cpu_before
                followed_for = time.monotonic() - writing
                queries = _log_queries(control)
                window = min(60.0, followed_for)
                recent = sum(1 for at in queries if at >= queries[-1] - window)
                following_rate = recent * 60 / window
                follower.send_signal(signal.SIGINT)
                follower.wait(timeout=30)
                stopped = max(_log_queries(control) or [0.0])
                time.sleep(20)
                after = [at for at in _log_queries(control) if at > stopped]
                logs = f"{control}/organizations/{common.ORG}/projects/{PROJECT}/containers"
                written = httpx.get(f"{logs}/{group}/logs", timeout=30).json()["items"]
                reader.join(timeout=5)

        received = {item["text"]: datetime.fromisoformat(item["receive_time"]) for item in written}
        expected = Counter(item["text"] for item in written)
        got = Counter(text for _, text in shown)
        lost = sum((expected - got).values())
        repeated = sum((got - expected).values())
        late = sorted(
            (at - received[text]).total_seconds() for at, text in shown if text in received
        )
        quantiles = statistics.quantiles(late, n=100) if len(late) > 1 else [0.0] * 99
        common.report(
            f"kubectl logs -f for {wrote_for:.0f} s at {rate:g} lines/s",
            {
                "lines written": sum(expected.values()),
                "lines shown": sum(got.values()),
                "lost": lost,
                "repeated": repeated,
                "shown after receive_time p50 (s)": f"{quantiles[49]:.2f}",
                "shown after receive_time p99 (s)": f"{quantiles[98]:.2f}",
                "shown after receive_time max (s)": f"{late[-1]:.2f}" if late else "-",
                "receive lag up to (s)": lag,
                "follow poll interval (s)": interval,
                "log queries / min while following": f"{following_rate:.0f}",
                "log queries in 20 s after Ctrl-C": len(after),
                "supervisor CPU while following (% of one core)": (
                    f"{100 * cpu / followed_for:.1f}"
                ),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of writing")
    parser.add_argument("--rate", type=float, default=2.0, help="lines per second")
    parser.add_argument("--lag", type=float, default=2.0, help="longest receive delay, seconds")
    parser.add_argument("--interval", type=float, default=2.0, help="follow poll interval")
    args = parser.parse_args()
    run(args.duration, args.rate, args.lag, args.interval)


if __name__ == "__main__":
    main()
