"""The resolved projects file: every node final, plus what to watch for changes."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .diff import ConfigDiff, diff_nodes
from .errors import ConfigProblem
from .node import NodeConfig


class ProjectsConfig(BaseModel):
    """A projects file, loaded and checked; nodes in file order.

    ``source_hashes`` maps the config file and every key file to the ``content_hash``
    of the bytes this load actually read. A reload watcher polls
    ``content_hash(path)`` for each of ``watched_paths()`` and reloads when one
    differs, so a change made while loading is never missed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    salad_api_url: str
    api_rate_limit: int
    nodes: tuple[NodeConfig, ...]
    source_hashes: dict[Path, str]
    warnings: tuple[ConfigProblem, ...] = ()
    """What loading found worth saying that does not stop the file being used."""

    def watched_paths(self) -> tuple[Path, ...]:
        """The config file first, then every key file (each once)."""
        return tuple(self.source_hashes)

    @cached_property
    def nodes_by_name(self) -> dict[str, NodeConfig]:
        """Read on every placement, for every node: built once (the model is frozen)."""
        return {node.name: node for node in self.nodes}

    def key_groups(self) -> dict[str, tuple[NodeConfig, ...]]:
        """Nodes grouped by API key digest: each group shares one rate-limit budget.
        Nodes without a key are in no group."""
        groups: dict[str, list[NodeConfig]] = {}
        for node in self.nodes:
            if node.api_key_missing is not None:
                continue
            groups.setdefault(node.api_key_digest, []).append(node)
        return {digest: tuple(nodes) for digest, nodes in groups.items()}

    def diff(self, new: ProjectsConfig) -> ConfigDiff:
        """What changes when ``new`` replaces this config."""
        return diff_nodes(self.nodes, new.nodes)
