"""What a reload changes: which nodes to start, restart, decommission or leave alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .node import NodeConfig


@dataclass(frozen=True)
class NodeChange:
    """A node present before and after a reload, with different settings."""

    old: NodeConfig
    new: NodeConfig

    @property
    def changed_keys(self) -> tuple[str, ...]:
        """The file's names of what changed (``apiKey`` for the key), for the log line."""
        return self.old.changed_keys(self.new)


@dataclass(frozen=True)
class ConfigDiff:
    """Nodes of two configs, matched by node name.

    ``added``, ``changed`` and ``unchanged`` follow the new file's order, ``removed``
    the old one's. ``unchanged`` holds the new configs (their fingerprints equal the
    old ones).
    """

    added: Mapping[str, NodeConfig]
    removed: Mapping[str, NodeConfig]
    changed: Mapping[str, NodeChange]
    unchanged: Mapping[str, NodeConfig]

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_nodes(old: Iterable[NodeConfig], new: Iterable[NodeConfig]) -> ConfigDiff:
    """Compare by name; a node whose fingerprint differs has changed."""
    before = {node.name: node for node in old}
    after = {node.name: node for node in new}
    added: dict[str, NodeConfig] = {}
    changed: dict[str, NodeChange] = {}
    unchanged: dict[str, NodeConfig] = {}
    for name, node in after.items():
        previous = before.get(name)
        if previous is None:
            added[name] = node
        elif previous.fingerprint != node.fingerprint:
            changed[name] = NodeChange(old=previous, new=node)
        else:
            unchanged[name] = node
    removed = {name: node for name, node in before.items() if name not in after}
    return ConfigDiff(added=added, removed=removed, changed=changed, unchanged=unchanged)
