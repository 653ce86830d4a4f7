"""Stopping the fleet benchmark stops everything it started: the control plane, the
simulator and the supervisor, whether by SIGTERM or by Ctrl-C (SIGINT)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.controlplane


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; fields resume after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int, start_ticks: str) -> bool:
    """The same process (not a reused PID) still exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and fields[19] == start_ticks


def descendants(root: int) -> dict[int, tuple[str, str]]:
    """pid -> (start ticks, command line) of every process below ``root``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, tuple[str, str]] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is None:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found[pid] = (fields[19], command)
        todo += children.get(pid, [])
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_the_benchmark_leaves_no_process_behind(
    stop: signal.Signals, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "tests.benchmarks.fleet", "--nodes", "2"]
    command += ["--pods-per-node", "1", "--observe", "600", "--out", str(tmp_path)]
    with (tmp_path / "bench.log").open("wb") as sink:
        bench = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        started: dict[int, tuple[str, str]] = {}
        while time.monotonic() < deadline:
            started = descendants(bench.pid)
            commands = [c for _, c in started.values()]
            if any("supervisor run" in c for c in commands) and any(
                "supervisor simulate" in c for c in commands
            ):
                break
            assert bench.poll() is None, (tmp_path / "bench.log").read_text()
            time.sleep(0.5)
        else:
            pytest.fail("the benchmark did not start its processes within 180 s")
        assert any("kube-apiserver" in c for _, c in started.values())

        bench.send_signal(stop)
        code = bench.wait(timeout=120)
        left = {pid: command for pid, (ticks, command) in started.items() if alive(pid, ticks)}
        assert not left, f"still running after the benchmark stopped: {left}"
        assert code == 143, (tmp_path / "bench.log").read_text()
        assert "every process it started is gone" in (tmp_path / "bench.log").read_text()
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
