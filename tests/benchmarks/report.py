"""The fleet benchmark's result as files: ``result.json``, ``report.md`` and plots.

Plots need matplotlib (``pip install -e ".[bench]"``); without it the report says so
and keeps its tables. Phases are shaded so a spike can be placed: start-up (white,
until every node is Ready), burst (orange, until every pod runs), steady (green),
staleness (blue) and shutdown (red).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_PHASE_COLOURS = {
    "burst": "#fde2c8",
    "steady": "#dff0d8",
    "staleness": "#d9edf7",
    "shutdown": "#f2dede",
}


def phase_spans(samples: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float]]:
    """``(phase, first t, last t)`` of each run of samples in one phase."""
    spans: list[tuple[str, float, float]] = []
    for sample in samples:
        phase, t = str(sample["phase"]), float(sample["t"])
        if spans and spans[-1][0] == phase:
            spans[-1] = (phase, spans[-1][1], t)
        else:
            spans.append((phase, t, t))
    return spans


def plot(result: Mapping[str, Any], folder: Path) -> list[str]:
    """Write the plots into ``folder``; returns their file names (none without
    matplotlib)."""
    try:
        import matplotlib  # noqa: PLC0415 - optional: the bench extra

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return []
    samples = result["timeline"]
    spans = phase_spans(samples)
    t = [s["t"] for s in samples]
    written: list[str] = []

    def figure(name: str, title: str, ylabel: str) -> Any:
        fig, axes = plt.subplots(figsize=(9, 3.6))
        for phase, start, end in spans:
            if phase in _PHASE_COLOURS:
                axes.axvspan(start, end, color=_PHASE_COLOURS[phase], alpha=0.6, lw=0)
        axes.set_title(title)
        axes.set_xlabel("seconds since start")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        return fig, axes

    def save(fig: Any, axes: Any, name: str) -> None:
        axes.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        written.append(name)

    fig, axes = figure("lease", "Largest Lease renewal gap (any node)", "seconds")
    axes.plot(t, [s["lease_gap_max"] for s in samples], ".", ms=3, label="gap between renewals")
    axes.plot(t, [s["lease_age_max"] for s in samples], lw=1, label="longest unrenewed now")
    axes.axhline(15, color="red", ls="--", lw=1, label="goal < 15 s")
    save(fig, axes, "lease-gap.png")

    fig, axes = figure("lag", "Event-loop lag", "seconds")
    axes.plot(
        t,
        [s["healthz_s"] if s["healthz_s"] is not None else float("nan") for s in samples],
        lw=1,
        label="/healthz answer time, from the benchmark (every sample)",
    )
    lag = result.get("lag_p99_by_scrape") or []
    axes.step(
        [x["t"] for x in lag],
        [x["p99"] if x["p99"] is not None else float("nan") for x in lag],
        where="pre",
        label="lag p99 (histogram bucket, per scrape interval)",
    )
    axes.axhline(0.25, color="green", ls="--", lw=1, label="steady goal 0.25 s")
    axes.axhline(1.0, color="red", ls="--", lw=1, label="burst goal 1 s")
    axes.set_yscale("symlog", linthresh=0.05)
    save(fig, axes, "loop-lag.png")

    per_key = result.get("salad_per_key_per_minute") or []
    if per_key:
        fig, axes = figure("salad", "SaladCloud requests per key, trailing 60 s", "requests")
        kt = [x["t"] for x in per_key]
        axes.plot(kt, [x["max_key"] for x in per_key], label="busiest key")
        axes.plot(kt, [x["median_key"] for x in per_key], label="median key")
        axes.plot(kt, [x["throttled"] for x in per_key], label="429s (all keys)")
        limit = float(result["config"]["rate_limit"])
        axes.axhline(limit, color="red", ls="--", lw=1, label=f"limit {limit:.0f}/min")
        save(fig, axes, "salad-per-key.png")

    fig, axes = figure("pods", "Pods over time", "pods")
    axes.plot(t, [s["pods_running"] for s in samples], label="Running")
    axes.plot(t, [s["pods_total"] for s in samples], lw=1, ls=":", label="all pods")
    created = result.get("groups_created_at") or []
    if created:
        axes.plot(created, range(1, len(created) + 1), lw=1, label="groups created (cumulative)")
    save(fig, axes, "pods.png")

    fig, axes = figure("usage", "Supervisor CPU and memory", "% of one core")
    axes.plot(t, [s["cpu_percent"] for s in samples], lw=1, label="CPU %")
    twin = axes.twinx()
    twin.plot(t, [s["rss_mib"] for s in samples], color="purple", lw=1, label="RSS MiB")
    twin.set_ylabel("MiB")
    save(fig, axes, "usage.png")
    return written


def markdown(result: Mapping[str, Any], plots: Sequence[str]) -> str:
    config = result["config"]
    lines = [
        f"# Fleet benchmark: {result['title']}",
        "",
        f"`{result['command']}`",
        "",
        f"Machine: {result['machine']['cores']} cores; load average (1 min) at start "
        f"{result['machine']['load_start']:.2f}, at end {result['machine']['load_end']:.2f}, "
        f"highest seen {result['machine']['load_max']:.2f}. Other work shares this machine: "
        "compare figures only with the load they were taken at.",
        "",
        f"{config['nodes']} nodes x {config['pods_per_node']} pods, {config['keys']} API "
        f"key(s) at {config['rate_limit']}/min, poll interval {config['poll_interval']} s, "
        f"simulator time scale {config['time_scale']}"
        + (
            f"; the burst began {config['settle']} s after all were Ready."
            if "settle" in config
            else "."
        )
        + (
            f" The supervisor ran at nice {config['nice']}; the control plane and the"
            f" simulator at {os.nice(0)}."
            if config.get("nice") != os.nice(0) and "nice" in config
            else ""
        ),
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in result["figures"].items()]
    if result.get("staleness"):
        lines += ["", "## Status staleness", ""]
        lines += [f"- {key}: {value}" for key, value in result["staleness"].items()]
    if result.get("steady_cpu_by_command"):
        shares = ", ".join(
            f"{name} {share} %" for name, share in result["steady_cpu_by_command"].items()
        )
        lines += ["", f"Who used the cores in steady state (% of one core): {shares}."]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({name})" for name in plots]
    else:
        lines += ["", "(no plots: install the `bench` extra for matplotlib)"]
    if result.get("profile"):
        lines += ["", "## Profile of the supervisor (py-spy)", "", result["profile"]]
    if result.get("loop_probe"):
        lines += ["", "## Event-loop stalls (`--loop-probe`)", ""]
        lines += [
            "| phase | turns > 0.25 s | > 1 s | longest (s) | on CPU in turns > 0.1 s"
            " | collector (s) by generation |"
        ]
        lines += ["|---|---:|---:|---:|---:|---|"]
        for phase, seen in result["loop_probe"].items():
            spent = ", ".join(f"{g}: {s}" for g, s in seen["collector (s) by generation"].items())
            lines.append(
                f"| {phase} | {seen['turns over 0.25 s']} | {seen['turns over 1 s']} "
                f"| {seen['longest turn (s)']}"
                f" | {_percent(seen.get('on CPU in turns over 0.1 s (%)'))} | {spent or '-'} |"
            )
        lines += ["", "Longest single callbacks:", ""]
        for phase, seen in result["loop_probe"].items():
            for took, name in seen["slowest callbacks"][:5]:
                lines.append(f"- {phase}, {took} s: `{name}`")
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value} %"


def write(result: Mapping[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result, indent=1, default=str))
    plots = plot(result, folder)
    report = folder / "report.md"
    report.write_text(markdown(result, plots))
    return report
