"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``) as exact fractions.

Exact arithmetic matters at the edges: ``1Gi`` must be exactly 1024 MiB, and
``1001m`` must round up to 2 vCPUs, not down through a float.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from config.quantities import parse_quantity as exact_quantity

MIB = 2**20


def parse_quantity(value: object) -> Fraction | None:
    """The quantity ``value`` stands for, or ``None`` if it is not one.

    Strings use Kubernetes' syntax (one parser for the whole project, in ``config``);
    JSON numbers are accepted as plain amounts.
    """
    if not isinstance(value, str):
        return _json_number(value)
    return _parse_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> Fraction | None:
    # Cached: every node compares its capacity with the server's Node each lease
    # interval, the same few strings parsed 200 times a second at 1,000 nodes.
    try:
        return Fraction(exact_quantity(value.strip()))
    except ValueError:
        return None


def _json_number(value: object) -> Fraction | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Fraction(value) if math.isfinite(value) else None


def ceil_div(amount: Fraction, unit: Fraction | int) -> int:
    """``amount / unit`` rounded up, as the kubelet rounds resource values."""
    return math.ceil(amount / unit)
