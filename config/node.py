"""One node's resolved configuration: what a virtual node is built from.

Everything is final here: ``defaults`` merged in, the API key read, the provider
taint applied. The ``fingerprint`` tells the supervisor whether a reload changed
anything the node depends on, so only changed nodes restart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from .schema import (
    DEFAULT_API_RATE_LIMIT,
    DEFAULT_SALAD_API_URL,
    MAX_PODS_PER_NODE,
    Priority,
    Taint,
)

PROVIDER_TAINT = Taint(key="virtual-kubelet.io/provider", value="saladcloud", effect="NoSchedule")
"""Keeps pods that do not tolerate it off the node (the virtual-kubelet convention)."""

DEFAULT_CAPACITY: MappingProxyType[str, str] = MappingProxyType(
    {
        # A list call returns at most 100 container groups: one node, at most 100 pods.
        "pods": str(MAX_PODS_PER_NODE),
        # The rest only has to be large enough never to be what blocks scheduling
        # (100 pods of the largest SaladCloud sizes); SaladCloud sizes each group.
        "cpu": "10000",
        "memory": "100Ti",
        "nvidia.com/gpu": "10000",
        "ephemeral-storage": "100Pi",
    }
)
DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_RATE_LIMIT_SHARE = 1.0
DEFAULT_WEIGHT = 1

MIN_MASKED_SECRET = 8
"""Logs mask secrets of at least this many characters, as whole tokens. A shorter key
would mask ordinary words (``salad-wrongkey``), so it is not masked: loading it warns."""

_KEY_FIELDS = {"api_key", "api_key_source", "api_key_missing"}
"""The key, where it was read from and why it is missing: not settings of the file,
and never dumped."""


class ApiKeySource(BaseModel):
    """Where a node's key was read from: said in messages instead of the key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["file", "env"]
    location: str
    """The key file's path, or the environment variable's name."""
    size: int
    """Length of the key in bytes, after surrounding whitespace is stripped."""

    def __str__(self) -> str:
        where = f"file {self.location}" if self.kind == "file" else f"env {self.location}"
        return f"{where}; {self.size} byte{'' if self.size == 1 else 's'}"


@dataclass(frozen=True)
class NodeKey:
    """A node's key as loading found it: the key, or why there is none."""

    api_key: SecretStr
    source: ApiKeySource
    missing: str | None = None


class NodeConfig(BaseModel):
    """A virtual node's settings, final.

    Built by ``config.load_projects``; tests may build one directly, where the
    defaults below stand in for the file's. ``repr`` and ``str`` show the key masked.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    organization: str
    project: str
    api_key: SecretStr
    api_key_source: ApiKeySource | None = None
    """``None`` when the key was given in code rather than read from a source."""
    api_key_missing: str | None = None
    """Why the node has no key (then ``api_key`` is empty): said on its condition
    ``SaladCloudReachable`` (reason ``APIKeyMissing``) until the key appears."""
    salad_api_url: str = DEFAULT_SALAD_API_URL
    api_rate_limit: int = DEFAULT_API_RATE_LIMIT
    """Requests per minute allowed for this node's API key, shared by every node using it."""
    rate_limit_share: float = DEFAULT_RATE_LIMIT_SHARE
    """This node's weight among the nodes sharing its API key's budget."""
    weight: int = DEFAULT_WEIGHT
    """How much of a replica's work this node is, when replicas share out the nodes."""
    poll_interval: float = DEFAULT_POLL_INTERVAL
    """Seconds between two lists of the project's container groups."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels from the file; the node adds its own standard labels."""
    taints: tuple[Taint, ...] = (PROVIDER_TAINT,)
    """Every taint of the Node at registration, provider taint included when enabled."""
    capacity: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    """Kubernetes quantities as written; reported as both capacity and allocatable."""
    default_country_codes: tuple[str, ...] = ()
    """For pods that name none; empty means any country."""
    default_gpu_classes: tuple[str, ...] = ()
    """Names or ids, for pods that name none; empty means CPU-only."""
    default_priority: Priority | None = None
    allowed_namespaces: tuple[str, ...] | None = None
    """The only namespaces whose pods this node serves; ``None``: every namespace."""
    namespace_selector: dict[str, Any] | None = None
    """A Kubernetes label selector (``matchLabels``, ``matchExpressions``) a pod's
    namespace must match, besides ``allowed_namespaces``; ``None``: no selector."""

    @property
    def api_key_digest(self) -> str:
        """SHA-256 of the key: tells keys apart (shared budgets, changes) without holding one."""
        return hashlib.sha256(self.api_key.get_secret_value().encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Hash of everything the node runs with, the key by its digest.

        Equal fingerprints mean a running node needs no restart. Where the key was
        read from is left out: moving a key file does not change the node.
        """
        settings = self.model_dump(mode="json", exclude=_KEY_FIELDS)
        settings["api_key_digest"] = self.api_key_digest
        if self.api_key_missing is not None:
            # Where the missing key is expected is part of what the node says.
            settings["api_key_missing"] = self.api_key_missing
        canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def __hash__(self) -> int:
        # Frozen, but its dict fields defeat pydantic's field hash; equal configs
        # have equal fingerprints, so this agrees with ``==``.
        return hash(self.fingerprint)

    def file_settings(self) -> dict[str, Any]:
        """Every setting but the key, as JSON under the projects file's (camelCase) names."""
        settings = self.model_dump(mode="json", exclude=_KEY_FIELDS)
        return {to_camel(name): value for name, value in settings.items()}

    def changed_keys(self, other: NodeConfig) -> tuple[str, ...]:
        """The file's names of the settings that differ between ``self`` and ``other``."""
        mine, theirs = self.file_settings(), other.file_settings()
        changed = [key for key, value in mine.items() if theirs[key] != value]
        if (self.api_key_digest, self.api_key_missing) != (
            other.api_key_digest,
            other.api_key_missing,
        ):
            changed.append("apiKey")
        return tuple(changed)
