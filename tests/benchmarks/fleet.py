"""N virtual nodes with M pods each, in one ``salad-vk run`` process: what does it cost?

    python -m tests.benchmarks.fleet --nodes 1000 --pods-per-node 1        # scale
    python -m tests.benchmarks.fleet --nodes 20 --pods-per-node 10 --keys 1  # burst on one key
    python -m tests.benchmarks.fleet --nodes 1 --pods-per-node 100 --staleness 40
    python -m tests.benchmarks.fleet --nodes 2000 --pods-per-node 1 --profile 30

Starts a loopback control plane, ``salad-vk simulate`` (one project per node, the real
240 requests/min per key) and ``salad-vk run`` as separate processes, so the figures
are the supervisor's alone. Phases: start-up (until every node is Ready, then
``--settle`` seconds so that the burst meets the keys as they run, not their start-up
lists; ``--settle 0`` bursts at once), burst (one
Deployment per node created at once, until every pod is Running), steady (``--observe``
seconds), optionally staleness (``--staleness N``: N groups stopped in the simulator,
one at a time; the time until each pod shows it), with ``--profile`` a py-spy profile
after the steady window (it stops the process for each sample, which the steady figures
would show), then shutdown (SIGTERM, timed). Throughout, a timeline samples Lease
renewals, ``/healthz`` latency, CPU, RSS and pods Running; ``/metrics`` is scraped every
15 s; the simulator's own log of requests gives the per-key rate the limit counts.

Writes ``result.json`` and ``report.md`` with plots (matplotlib: the ``bench`` extra)
into ``--out``, and prints the figures. It measures and asserts nothing: correctness
lives in the tests. SIGTERM or Ctrl-C stops it and every process it started.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from nodes.translate.names import container_group_name
from tests.controlplane import cluster
from tests.manifests import workload

from . import common, loop_probe, observe, report
from .profile_top import read as read_profile
from .profile_top import table as profile_table

NAMESPACE = "bench"


def _kube_factory(plane: cluster.ControlPlane) -> Any:
    config = json.loads(plane.kubeconfig.read_text())
    user = config["users"][0]["user"]
    folder = plane.dir / "bench-client"
    folder.mkdir(exist_ok=True)
    (folder / "ca.crt").write_bytes(
        base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
    )
    (folder / "client.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (folder / "client.key").write_bytes(base64.b64decode(user["client-key-data"]))

    def client() -> httpx.Client:
        tls = ssl.create_default_context(cafile=str(folder / "ca.crt"))
        tls.load_cert_chain(str(folder / "client.crt"), str(folder / "client.key"))
        return httpx.Client(base_url=plane.server, verify=tls, timeout=60)

    return client


def _load() -> float:
    return os.getloadavg()[0]


class _Stopped(Exception):
    """SIGTERM (or SIGINT) arrived: unwind, so every process started is stopped."""


def _stop_on_signals() -> None:
    def stop(number: int, _frame: FrameType | None) -> None:
        # Further signals must not interrupt the clean-up this one starts.
        for each in (signal.SIGTERM, signal.SIGINT):
            signal.signal(each, signal.SIG_IGN)
        raise _Stopped(signal.Signals(number).name)

    for each in (signal.SIGTERM, signal.SIGINT):
        signal.signal(each, stop)


def _wait(condition: Any, timeout: float, what: str, poll: float = 0.5) -> float:
    began = time.monotonic()
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if condition():
                return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(poll)


def _readyz(url: str) -> bool:
    return httpx.get(f"{url}/readyz", timeout=30).status_code == 200


def _phase_max(samples: list[observe.Sample], phase: str, field: str) -> float | None:
    values = [getattr(s, field) for s in samples if s.phase == phase]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _percent_of_core(
    before: dict[tuple[int, int, str], float],
    after: dict[tuple[int, int, str], float],
    seconds: float,
) -> dict[str, float]:
    """Who used the cores over ``seconds``, by command, in % of one core, busiest first:
    each process counts what it spent in the window (from zero if it started in it);
    one that ended in it is not seen at all."""
    by_name: dict[str, float] = {}
    for key, cpu in after.items():
        by_name[key[2]] = by_name.get(key[2], 0.0) + cpu - before.get(key, 0.0)
    busiest = sorted(by_name.items(), key=lambda item: -item[1])
    return {name: round(100 * cpu / seconds, 1) for name, cpu in busiest if cpu / seconds >= 0.005}


@contextlib.contextmanager
def _profiling(pid: int, seconds: float, out: Path) -> Iterator[list[str]]:
    """py-spy on the supervisor for ``seconds`` (if py-spy is installed)."""
    found: list[str] = []
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if seconds <= 0 or not Path(spy).exists():
        yield found
        return
    raw = out / "profile.txt"
    command = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", "50", "--gil", "--format", "raw", "--output", str(raw)]
    with (out / "py-spy.log").open("wb") as sink:
        spying = subprocess.Popen(command, stdout=sink, stderr=sink)
    try:
        yield found
    finally:
        try:
            spying.wait(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            spying.kill()
            spying.wait()
        if raw.exists():
            found.append(profile_table(read_profile(raw.read_text().splitlines()), 15))


def _stop_group(sim_url: str, project: str, group: str) -> None:
    """Stop a group behind the supervisor's back, as the SaladCloud portal would: a
    state change that lasts (an interrupted instance comes back within a poll at a
    time scale of 60), which the pod shows as Failed (ContainerGroupStopped)."""
    path = f"/_simulator/organizations/{common.ORG}/projects/{project}/containers/{group}"
    httpx.post(f"{sim_url}{path}/stop", json={}, timeout=30).raise_for_status()


def _staleness(
    count: int,
    kube: httpx.Client,
    pods: observe.PodWatcher,
    sim_url: str,
    projects: Mapping[str, tuple[str, str]],
    poll_interval: float,
) -> dict[str, Any]:
    """Stop ``count`` running groups one at a time; seconds until each pod shows it.

    Each stop comes at a random point of the node's poll cycle (a wait of up to one
    interval after the previous one was seen), or every stop would land just after a
    list and measure the worst case only."""
    items = kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods").json()["items"]
    running = [
        p
        for p in items
        if (p.get("status") or {}).get("phase") == "Running" and p["spec"].get("nodeName")
    ]
    random.shuffle(running)
    delays: list[float] = []
    missed = 0
    for pod in running[:count]:
        meta = pod["metadata"]
        group = container_group_name(meta["namespace"], meta["name"], meta["uid"])
        project = projects[pod["spec"]["nodeName"]][0]
        began = time.monotonic()
        _stop_group(sim_url, project, group)
        seen = None
        while time.monotonic() - began < 60 and seen is None:
            time.sleep(0.05)
            with pods._lock:
                for at, name, phase, _ready in pods.changes:
                    if name == meta["name"] and at >= began and phase == "Failed":
                        seen = at - began
                        break
        if seen is None:
            missed += 1
        else:
            delays.append(seen)
        time.sleep(random.uniform(0.0, poll_interval))
    return {
        "groups stopped": count,
        "seen": len(delays),
        "not seen within 60 s": missed,
        "p50 (s)": _fmt(_quantile(delays, 0.5), 2),
        "p95 (s)": _fmt(_quantile(delays, 0.95), 2),
        "max (s)": _fmt(max(delays) if delays else None, 2),
        "delays": [round(d, 2) for d in delays],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    load_start = _load()
    load_max = load_start
    names = [f"bench-{i:04d}" for i in range(args.nodes)]
    keys = args.keys or args.nodes
    projects = {
        name: (f"p{i:04d}", f"bench-key-{i % keys:04d}-0c3e5a7f9b1d")
        for i, name in enumerate(names)
    }
    total = args.nodes * args.pods_per_node
    figures: dict[str, Any] = {}
    result: dict[str, Any] = {
        "title": f"{args.nodes} nodes x {args.pods_per_node} pods, {keys} key(s)",
        "command": "python -m tests.benchmarks.fleet " + " ".join(sys.argv[1:]),
        "config": {
            "nodes": args.nodes,
            "pods_per_node": args.pods_per_node,
            "keys": keys,
            "rate_limit": args.rate_limit,
            "poll_interval": args.poll_interval,
            "time_scale": args.time_scale,
            "shutdown_grace": args.shutdown_grace,
            "settle": args.settle,
            "nice": args.nice,
        },
        "figures": figures,
    }
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with common.control_plane() as plane, tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        kube_factory = _kube_factory(plane)
        sim_port, metrics_port = common.free_port(), common.free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        sim_command = common.simulator_command(
            sim_port,
            [p for p, _ in projects.values()],
            sorted({k for _, k in projects.values()}),
            time_scale=args.time_scale,
            rate_limit=args.rate_limit,
        )
        with common.process(sim_command, out / "simulator.log"):
            common.wait_for(f"{sim_url}/_simulator")
            config = common.write_projects(
                work, f"{sim_url}/api/public", projects, poll_interval=args.poll_interval
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
                "--shutdown-grace-seconds",
                str(args.shutdown_grace),
            )
            if args.nice:
                supervisor_command = ["nice", "-n", str(args.nice), *supervisor_command]
            url = f"http://127.0.0.1:{metrics_port}"
            with kube_factory() as kube:
                kube.post("/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}})
            pods = observe.PodWatcher(kube_factory, NAMESPACE)
            launched = time.monotonic()
            probe_env: dict[str, str] = {}
            if args.loop_probe:
                (out / "loop-probe.jsonl").unlink(missing_ok=True)
                probe_env = {
                    "PYTHONPATH": os.pathsep.join(
                        p for p in (str(loop_probe.FOLDER), os.environ.get("PYTHONPATH")) if p
                    ),
                    "SALAD_VK_LOOP_PROBE": str(out / "loop-probe.jsonl"),
                }
            with common.process(
                supervisor_command, out / "salad-vk.log", env=probe_env
            ) as supervisor:
                pods.start()
                timeline = observe.Timeline(
                    kube_factory=kube_factory,
                    metrics_url=url,
                    pid=supervisor.pid,
                    pods=pods,
                    lease_prefix="bench-",
                    started=started,
                )
                boundaries: dict[str, observe.Scrape | None] = {}
                try:
                    common.wait_for(f"{url}/healthz", timeout=120)
                    result["config"]["nice"] = common.nice_of(supervisor.pid)
                    timeline.start()
                    _wait(lambda: _readyz(url), args.ready_timeout, "nodes Ready")
                    figures["nodes Ready after start (s)"] = _fmt(time.monotonic() - launched)
                    load_max = max(load_max, _load())
                    time.sleep(args.settle)

                    boundaries["burst"] = timeline.scrape()
                    timeline.phase = "burst"
                    burst_at = time.monotonic()
                    result["burst_at"] = round(burst_at - started, 2)
                    with kube_factory() as kube:
                        for name in names:
                            kube.post(
                                f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
                                json=workload(name, args.pods_per_node, node=name),
                            )
                    figures["Deployments created in (s)"] = _fmt(time.monotonic() - burst_at)
                    _wait(
                        lambda: pods.counts()[0] >= total,
                        args.burst_timeout,
                        f"{total} pods Running",
                        poll=0.25,
                    )
                    figures[f"{total} pods Running after burst start (s)"] = _fmt(
                        time.monotonic() - burst_at
                    )
                    load_max = max(load_max, _load())

                    boundaries["steady"] = timeline.scrape()
                    timeline.phase = "steady"
                    steady_at = time.monotonic()
                    steady_cpu = common.usage(supervisor.pid).cpu_seconds
                    machine_cpu = common.machine_busy_seconds()
                    by_process = common.cpu_by_process()
                    time.sleep(args.observe)
                    steady_elapsed = time.monotonic() - steady_at
                    steady_cpu = common.usage(supervisor.pid).cpu_seconds - steady_cpu
                    machine_cpu = common.machine_busy_seconds() - machine_cpu
                    result["steady_cpu_by_command"] = _percent_of_core(
                        by_process, common.cpu_by_process(), time.monotonic() - steady_at
                    )
                    boundaries["steady-end"] = timeline.scrape()
                    load_max = max(load_max, _load())
                    if args.profile:
                        # After the steady window, not in it: py-spy stops the process
                        # to take each sample, which the lag and gap figures would show.
                        timeline.phase = "profile"
                        with _profiling(supervisor.pid, args.profile, out) as profile:
                            pass
                        if profile:
                            result["profile"] = profile[0]

                    if args.staleness:
                        timeline.phase = "staleness"
                        with kube_factory() as kube:
                            result["staleness"] = _staleness(
                                args.staleness, kube, pods, sim_url, projects, args.poll_interval
                            )
                except TimeoutError as error:
                    # Where it bends is a result too: report what was reached, then
                    # time the shutdown all the same.
                    figures["stopped early"] = str(error)
                finally:
                    timeline.phase = "shutdown"
                    pods.stop()
                # Shutdown, timed: what a rollout or a node drain does to the process.
                signalled = time.monotonic()
                supervisor.send_signal(signal.SIGTERM)
                try:
                    code = supervisor.wait(timeout=args.shutdown_grace + 60)
                except subprocess.TimeoutExpired:
                    code = None
                exit_after = time.monotonic() - signalled
                timeline.stop()
            requests = observe.salad_requests(sim_url, launched)
    # Every request, for questions the figures do not answer (what took a token when).
    with (out / "requests.jsonl").open("w") as journal:
        for record in requests:
            journal.write(json.dumps({**record, "t": round(record["wall"] - started, 3)}) + "\n")
    load_end = _load()
    samples = timeline.samples
    result["machine"] = {
        "cores": os.cpu_count(),
        "load_start": load_start,
        "load_end": load_end,
        "load_max": max(load_max, load_end),
    }

    def lease(phase: str) -> str:
        gap = _phase_max(samples, phase, "lease_gap_max")
        age = _phase_max(samples, phase, "lease_age_max")
        return _fmt(None if gap is None else max(gap, age or 0.0))

    def lag(phase: str, end: str) -> str:
        p99 = observe.lag_quantile(boundaries.get(phase), boundaries[end], 0.99)  # type: ignore[arg-type]
        healthz = [s.healthz_s for s in samples if s.phase == phase and s.healthz_s is not None]
        return f"{_fmt(p99, 3)} (healthz p99 {_fmt(_quantile(healthz, 0.99), 3)})"

    figures["largest lease-renewal gap (s): start-up / burst / steady"] = " / ".join(
        lease(p) for p in ("start-up", "burst", "steady")
    )
    if boundaries.get("steady") and boundaries.get("steady-end"):
        figures["event-loop lag p99 burst (s, bucket bound)"] = lag("burst", "steady")
        figures["event-loop lag p99 steady (s, bucket bound)"] = lag("steady", "steady-end")
        before, after = boundaries["steady"], boundaries["steady-end"]
        assert before is not None and after is not None
        minutes = (after.at - before.at) / 60
        figures["SaladCloud requests / min / node (steady)"] = _fmt(
            (after.salad_requests - before.salad_requests) / args.nodes / minutes, 2
        )
        figures["Kubernetes writes / min / node (steady)"] = _fmt(
            (after.kube_writes - before.kube_writes) / args.nodes / minutes, 2
        )
        figures["supervisor CPU steady (% of one core)"] = _fmt(100 * steady_cpu / steady_elapsed)
        # The control plane, the simulator and this benchmark share the cores: how busy
        # the machine was says how long a runnable loop thread may wait for one.
        figures[f"machine CPU steady (% of {os.cpu_count()} cores): all / others"] = (
            f"{_fmt(100 * machine_cpu / steady_elapsed / (os.cpu_count() or 1))} / "
            f"{_fmt(100 * (machine_cpu - steady_cpu) / steady_elapsed / (os.cpu_count() or 1))}"
        )
    rss = max((s.rss_mib for s in samples), default=0.0)
    figures["supervisor RSS max (MiB)"] = _fmt(rss, 0)
    figures["RSS per node (MiB)"] = _fmt(rss / args.nodes, 2)
    throttled = sum(1 for r in requests if r["status"] == 429)
    figures["429s served by the simulator"] = throttled
    created = sorted(
        r["wall"] - started
        for r in requests
        if r["method"] == "POST" and r["path"].endswith("/containers") and r["status"] < 300
    )
    result["groups_created_at"] = [round(c, 2) for c in created]
    if created and "burst_at" in result:
        # The fastest any client could create them: the limit, per key, nothing else sent.
        ceiling = total / keys * 60 / args.rate_limit
        figures[f"all {total} groups created after burst start (s)"] = (
            f"{_fmt(created[total - 1] - result['burst_at'])} (ceiling at "
            f"{args.rate_limit}/min per key: {_fmt(ceiling)})"
            if len(created) >= total
            else f"only {len(created)} created"
        )
    figures["SIGTERM to exit (s), exit code"] = (
        f"{_fmt(exit_after)}, {code} (grace {args.shutdown_grace:g} s)"
    )
    result["timeline"] = timeline.as_json()
    result["lag_p99_by_scrape"] = [
        {"t": round(b.at, 1), "p99": observe.lag_quantile(a, b, 0.99)}
        for (_, a), (_, b) in zip(timeline.scrapes, timeline.scrapes[1:], strict=False)
    ]
    result["salad_per_key_per_minute"] = observe.per_key_per_minute(requests, started)
    if args.loop_probe and (out / "loop-probe.jsonl").exists():
        spans = {
            phase: (started + begin, started + end)
            for phase, begin, end in report.phase_spans(result["timeline"])
        }
        result["loop_probe"] = loop_probe.summary(out / "loop-probe.jsonl", spans)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--pods-per-node", type=int, default=10)
    parser.add_argument(
        "--keys", type=int, default=0, help="API keys shared round-robin (0: one per node)"
    )
    parser.add_argument("--observe", type=float, default=120.0, help="steady window, seconds")
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--rate-limit", type=int, default=240, help="requests/min per key")
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--shutdown-grace", type=float, default=20.0)
    parser.add_argument("--staleness", type=int, default=0, help="groups to stop, one by one")
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds (steady)")
    parser.add_argument(
        "--loop-probe",
        action="store_true",
        help="record the supervisor's event-loop stalls and collections (loop-probe.jsonl)",
    )
    parser.add_argument(
        "--settle", type=float, default=15.0, help="seconds between all Ready and the burst"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="the supervisor's nice value; negative (root) puts it ahead of the control"
        " plane and simulator on the shared cores, as on a node of its own",
    )
    parser.add_argument("--ready-timeout", type=float, default=900.0)
    parser.add_argument("--burst-timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path, help="where result.json and report.md go")
    args = parser.parse_args()
    if args.out is None:
        name = f"{args.nodes}x{args.pods_per_node}" + (f"-k{args.keys}" if args.keys else "")
        args.out = Path("bench-results") / name
    _stop_on_signals()
    try:
        result = run(args)
    except _Stopped as stopped:
        print(f"fleet benchmark stopped by {stopped}; every process it started is gone")
        sys.exit(143)
    path = report.write(result, args.out)
    common.report(result["title"], result["figures"])
    if result.get("staleness"):
        common.report(
            "status staleness", {k: v for k, v in result["staleness"].items() if k != "delays"}
        )
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
