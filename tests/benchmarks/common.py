"""What both benchmarks share: a control plane, processes, and reading their figures.

Benchmarks are run by hand (``python -m tests.benchmarks.<name>``), print what they
measured, and assert nothing about speed: correctness lives in the tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.controlplane import cluster

ORG = "bench"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def control_plane() -> Iterator[cluster.ControlPlane]:
    with tempfile.TemporaryDirectory(prefix="salad-vk-bench-") as folder:
        plane = cluster.up(Path(folder), node_monitor_grace_period=40, die_with_parent=True)
        try:
            yield plane
        finally:
            cluster.down(Path(folder))


@contextlib.contextmanager
def process(
    command: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        child = subprocess.Popen(
            list(command),
            stdout=sink,
            stderr=sink,
            env={**os.environ, **(env or {})},
            preexec_fn=_terminate_with_parent,  # noqa: PLW1509 - no threads run yet
        )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _terminate_with_parent() -> None:
    """SIGTERM this child when the benchmark that started it dies, even by SIGKILL."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def salad_vk(*args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor", *args]


def simulator_command(
    port: int, projects: Sequence[str], keys: Sequence[str], **flags: Any
) -> list[str]:
    command = salad_vk("simulate", "--listen", f"127.0.0.1:{port}")
    for project in projects:
        command += ["--project", f"{ORG}/{project}"]
    for key in keys:
        command += ["--api-key", key]
    for flag, value in flags.items():
        command += [f"--{flag.replace('_', '-')}", str(value)]
    return command


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


def write_projects(
    folder: Path, api_url: str, nodes: Mapping[str, tuple[str, str]], poll_interval: float = 10.0
) -> Path:
    """A projects file: node name -> (project, key)."""
    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (project, key) in nodes.items():
        (keys / name).write_text(key)
        entries.append(
            {"name": name, "organization": ORG, "project": project, "apiKeyFile": str(keys / name)}
        )
    path = folder / "projects.yaml"
    path.write_text(
        yaml.safe_dump(
            {"saladApiUrl": api_url, "defaults": {"pollInterval": poll_interval}, "nodes": entries}
        )
    )
    return path


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    rss_mib: float


_UTIME, _STIME, _NICE, _STARTTIME = 11, 12, 16, 19
"""Indexes into ``/proc/PID/stat`` after the command name (fields 14, 15, 19, 22)."""


def _stat(path: Path) -> tuple[str, list[str]]:
    """``/proc/PID/stat`` read: the command name, and the fields after it (the name
    may hold spaces and parentheses, so it is cut at the last ``)``)."""
    head, _, rest = path.read_text().rpartition(")")
    return head.partition("(")[2], rest.split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[_UTIME]) + int(fields[_STIME])) / os.sysconf("SC_CLK_TCK")


def usage(pid: int) -> Usage:
    """CPU time (user + system) and resident memory of a running process, from /proc."""
    cpu = _cpu_seconds(_stat(Path(f"/proc/{pid}/stat"))[1])
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return Usage(cpu, rss)


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent busy since boot (``/proc/stat``):
    with the supervisor's own, what its neighbours took."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[tuple[int, int, str], float]:
    """CPU seconds (user + system) of every live process on the machine, keyed by pid,
    start time (a pid reused is another process) and command name: ``kube-apiserver``,
    ``etcd``, ``salad-vk run``, ``salad-vk simulate``, ``python`` (the rest)."""
    spent: dict[tuple[int, int, str], float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = _stat(stat)
        except OSError:  # gone since the listing
            continue
        if name == "python" or name.startswith("python3"):
            name = _python_role(stat.parent)
        elif name.startswith("kworker/"):  # named after their current work item
            name = "kworker (kernel)"
        spent[(int(stat.parent.name), int(fields[_STARTTIME]), name)] = _cpu_seconds(fields)
    return spent


def own_cpu_seconds() -> float:
    """CPU time (user + system) of this process so far."""
    return usage(os.getpid()).cpu_seconds


def nice_of(pid: int) -> int:
    """The nice value a process runs at (``nice -n`` without the right only warns)."""
    return int(_stat(Path(f"/proc/{pid}/stat"))[1][_NICE])


def _python_role(proc: Path) -> str:
    """``salad-vk run``, ``salad-vk simulate`` or ``python`` (this benchmark and the rest)."""
    try:
        argv = proc.joinpath("cmdline").read_bytes().split(b"\0")
    except OSError:
        return "python"
    if b"supervisor" in argv and b"run" in argv:
        return "salad-vk run"
    if b"supervisor" in argv and b"simulate" in argv:
        return "salad-vk simulate"
    return "python"


def metrics(url: str) -> dict[str, Any]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def histogram_quantile(family: Any, quantile: float) -> float:
    """The upper bound of the bucket holding ``quantile`` (summed over all label sets)."""
    buckets: dict[float, float] = {}
    for sample in family.samples:
        if sample.name.endswith("_bucket"):
            bound = float(sample.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
    total = buckets.get(float("inf"), 0.0)
    for bound in sorted(buckets):
        if total and buckets[bound] >= quantile * total:
            return bound
    return float("nan")


def counter_total(family: Any, **labels: str) -> float:
    return sum(
        float(s.value)
        for s in family.samples
        if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items())
    )


def report(title: str, figures: Mapping[str, Any]) -> None:
    print(f"\n== {title}")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    print(json.dumps({"benchmark": title, **{k: str(v) for k, v in figures.items()}}))
