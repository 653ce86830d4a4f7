"""Typed reads of a pod as the Kubernetes API returns it: plain JSON, camelCase keys.

The API server has validated the pod, so its shape is right almost always. These
readers make the rare odd value (a ``null`` where a list belongs, a number where a
string belongs) read as empty instead of raising: the node must never crash on a pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.translate.spec_bounds import PORT_MAX, PORT_MIN

EMPTY: Mapping[str, Any] = {}


def obj(value: object) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else EMPTY


def objs(value: object) -> list[Mapping[str, Any]]:
    """``value`` as a list of JSON objects (non-objects read as empty objects)."""
    if not isinstance(value, list | tuple):
        return []
    return [obj(item) for item in value]


def items(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty list."""
    return list(value) if isinstance(value, list | tuple) else []


def text(value: object, default: str = "") -> str:
    """``value`` if it is a string, ``default`` otherwise."""
    return value if isinstance(value, str) else default


def integer(value: object) -> int | None:
    """``value`` if it is a JSON integer (booleans are not), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def strings(value: object) -> dict[str, str]:
    """A JSON object of strings (labels, annotations, data), other entries dropped."""
    return {k: v for k, v in obj(value).items() if isinstance(k, str) and isinstance(v, str)}


def container_port(container: Mapping[str, Any], reference: object) -> int | None:
    """The port ``reference`` names: a number, or the name of one of the container's
    ports. ``None`` unless that is a port number SaladCloud accepts."""
    port = integer(reference)
    if port is None and isinstance(reference, str):
        named = [p for p in objs(container.get("ports")) if text(p.get("name")) == reference]
        if named:
            port = integer(named[0].get("containerPort"))
        elif reference.isdigit():
            port = int(reference)
    return port if port is not None and PORT_MIN <= port <= PORT_MAX else None
