"""GPU classes named by people (``RTX 4090 (24 GB)``) or by id, turned into ids.

The create body takes only class ids; names are what users know. Names resolve
case-insensitively against the organization's list, ids pass only if the list knows
them: an id SaladCloud does not offer is as wrong as a misspelt name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nodes.saladcloud.models import GpuClass


@dataclass(frozen=True)
class ResolvedGpuClasses:
    ids: tuple[str, ...]
    """In the order asked for, without repeats."""
    unknown: tuple[str, ...]
    """What matched neither an id nor a name, as written."""


def resolve_gpu_classes(wanted: Iterable[str], known: Sequence[GpuClass]) -> ResolvedGpuClasses:
    by_id = {gpu.id.lower(): gpu.id for gpu in known}
    by_name: dict[str, list[str]] = {}
    for gpu in known:
        by_name.setdefault(gpu.name.strip().lower(), []).append(gpu.id)
    ids: list[str] = []
    unknown: list[str] = []
    for entry in wanted:
        key = entry.strip().lower()
        # A name shared by several classes (community and secure variants) means any.
        matches = [by_id[key]] if key in by_id else by_name.get(key, [])
        if not matches:
            unknown.append(entry.strip())
        ids.extend(gpu_id for gpu_id in matches if gpu_id not in ids)
    return ResolvedGpuClasses(ids=tuple(ids), unknown=tuple(unknown))
