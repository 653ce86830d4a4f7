"""What the kubelet API needs from the supervisor: the nodes this process serves now.

The supervisor passes a ``NodeLookup``, called on every request. Today it is every
node with a running slot; with several replicas it is the nodes this replica owns,
which is exactly when the API server sends a node's requests here (a node's address
is its current owner's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nodes.node import VirtualNode
from nodes.saladcloud.client import SaladClient

JSON = Mapping[str, Any]


@dataclass(frozen=True)
class ServedNode:
    name: str
    project: str
    pods: Mapping[str, JSON]
    """The node's pod cache (``namespace/name`` -> pod), as its pod watch keeps it."""
    salad: SaladClient


NodeLookup = Callable[[], Mapping[str, ServedNode]]


def served(nodes: Iterable[object]) -> dict[str, ServedNode]:
    """The running virtual nodes among ``nodes``, by name."""
    found: dict[str, ServedNode] = {}
    for node in nodes:
        # A node without an API key has no logs to read, nor pods it could run.
        if isinstance(node, VirtualNode) and node.salad is not None:
            settings = node.settings
            found[settings.name] = ServedNode(
                settings.name, settings.project, node.pods.pods, node.salad
            )
    return found
