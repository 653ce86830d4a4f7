"""The event-loop probe of the fleet benchmark (``--loop-probe``): ``sitecustomize.py``
here is loaded into the supervisor; ``summary`` reads what it wrote."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent


def summary(path: Path, phases: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """Per phase (monotonic ``(start, end)``): stalls over 0.25 s and 1 s, how much of
    the long turns the loop thread spent on a core, the time in each collector
    generation, and the callers of the ten longest single callbacks."""
    records = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line cut short by the process's end
            records.append(json.loads(line))
    result: dict[str, Any] = {}
    for phase, (start, end) in phases.items():
        inside = [r for r in records if start <= r["t"] < end]
        turns = [r for r in inside if "busy" in r]
        collections = [r for r in inside if "gc" in r]
        result[phase] = {
            "turns over 0.25 s": sum(1 for r in turns if r["busy"] > 0.25),
            "turns over 1 s": sum(1 for r in turns if r["busy"] > 1.0),
            "longest turn (s)": max((r["busy"] for r in turns), default=0.0),
            "on CPU in turns over 0.1 s (%)": _on_cpu([r for r in turns if r["busy"] > 0.1]),
            "collector (s) by generation": _by_generation(collections),
            "slowest callbacks": _slowest(turns),
        }
    return result


def _on_cpu(turns: list[Mapping[str, Any]]) -> float | None:
    """The loop thread's CPU time over the turns' wall time. Well below 100, the long
    turns were long because the thread waited (for a core, or for the interpreter
    lock), not because it had that much to do."""
    wall = sum(float(r["busy"]) for r in turns)
    if not wall or any("cpu" not in r for r in turns):
        return None
    return round(100 * sum(float(r["cpu"]) for r in turns) / wall, 1)


def _by_generation(collections: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    spent: dict[str, float] = {}
    for record in collections:
        generation = str(record["gc"])
        spent[generation] = spent.get(generation, 0.0) + float(record["took"])
    return {generation: round(seconds, 2) for generation, seconds in sorted(spent.items())}


def _slowest(turns: Iterable[Mapping[str, Any]]) -> list[tuple[float, str]]:
    single = [(float(took), str(name)) for r in turns for took, name in r["slowest"]]
    return sorted(single, reverse=True)[:10]
