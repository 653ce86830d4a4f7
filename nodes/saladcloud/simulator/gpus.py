"""The organization's GPU classes: a few realistic defaults, or the names given."""

from __future__ import annotations

import uuid
from typing import Any

from ..models import PRIORITIES

_NAMESPACE = uuid.UUID("6f1d3c3e-2f0a-4d7e-9a55-5a1ad0c10ad5")

# name, price per hour at high/medium/low/batch, VRAM-ish memory bounds (MB), type
_DEFAULTS: tuple[tuple[str, tuple[str, str, str, str], int, str], ...] = (
    ("RTX 3060 (12 GB)", ("0.100", "0.080", "0.060", "0.040"), 16384, "community"),
    ("RTX 3090 (24 GB)", ("0.180", "0.150", "0.120", "0.090"), 30720, "community"),
    ("RTX 4070 (12 GB)", ("0.140", "0.120", "0.090", "0.070"), 16384, "community"),
    ("RTX 4090 (24 GB)", ("0.300", "0.260", "0.220", "0.180"), 61440, "community"),
    ("RTX 5090 (32 GB)", ("0.400", "0.350", "0.300", "0.250"), 61440, "community"),
    ("L40S (48 GB)", ("0.650", "0.600", "0.550", "0.500"), 122880, "secure"),
)


def gpu_class_id(name: str) -> str:
    """Stable id of a class name, so a seed-independent config can refer to it."""
    return str(uuid.uuid5(_NAMESPACE, name))


def gpu_classes(names: list[str]) -> list[dict[str, Any]]:
    """The ``GpuClass`` documents of the organization (the defaults when ``names`` is empty)."""
    table = _DEFAULTS
    if names:
        known = {row[0]: row for row in _DEFAULTS}
        table = tuple(
            known.get(name, (name, ("0.200", "0.170", "0.140", "0.110"), 30720, "community"))
            for name in names
        )
    classes = []
    for name, prices, max_ram, kind in table:
        classes.append(
            {
                "id": gpu_class_id(name),
                "name": name,
                "prices": [
                    {"priority": priority, "price": price}
                    for priority, price in zip(PRIORITIES, prices, strict=True)
                ],
                "gpu_class_type": kind,
                "gpu_count": 1,
                "is_high_demand": name.startswith("RTX 4090"),
                "min_vcpu": 1,
                "max_vcpu": 16,
                "min_ram": 1024,
                "max_ram": max_ram,
                "min_storage": 1073741824,
                "max_storage": 268435456000,
            }
        )
    return classes
