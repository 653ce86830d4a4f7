"""What translation needs besides the pod, fetched by the caller (I/O stays at the edge)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from config.country_codes import COUNTRY_CODES as KNOWN_COUNTRY_CODES
from nodes.saladcloud.models import PRIORITIES, GpuClass
from nodes.translate.spec_bounds import CPU_MAX, MEMORY_MAX_MB, MEMORY_MIN_MB

DEFAULT_CPU = 1
"""vCPUs for a container that states neither a cpu limit nor a request."""
DEFAULT_MEMORY_MB = MEMORY_MIN_MB
"""Megabytes for a container that states neither a memory limit nor a request:
SaladCloud's minimum."""


@dataclass(frozen=True)
class TranslationContext:
    """Everything about the node and the pod's surroundings that shapes a create body.

    Raises ``ValueError`` on node defaults SaladCloud would reject (an unknown country
    code or priority): those are operator mistakes to surface at once, not per pod.
    """

    node_name: str
    node_ip: str
    organization: str
    project: str
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    """Secrets of the pod's namespace, by name, with decoded data. A name that is not
    here was not found. Left out of ``repr``: a logged context must not leak them."""
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    """ConfigMaps of the pod's namespace, by name. A name that is not here was not found."""
    gpu_classes: Sequence[GpuClass] = ()
    """The organization's GPU classes (``list_gpu_classes``)."""
    default_country_codes: Sequence[str] = ()
    """Used when the pod has no ``salad.com/country-codes``; empty means any country."""
    default_gpu_classes: Sequence[str] = ()
    """Names or ids, used when a pod asks for ``nvidia.com/gpu: 1`` without
    ``salad.com/gpu-classes``."""
    default_priority: str | None = None
    """Used when the pod has no ``salad.com/container-group-priority``."""
    default_cpu: int = DEFAULT_CPU
    default_memory_mb: int = DEFAULT_MEMORY_MB
    kubernetes_version: str = ""
    """The API server's version (``v1.31.2``), for the probe User-Agent the kubelet sends."""

    def __post_init__(self) -> None:
        unknown = [code for code in self.default_country_codes if code not in KNOWN_COUNTRY_CODES]
        if unknown:
            raise ValueError(f"default country codes not known to SaladCloud: {unknown}")
        if self.default_priority is not None and self.default_priority not in PRIORITIES:
            raise ValueError(
                f"default priority {self.default_priority!r} is not one of {list(PRIORITIES)}"
            )
        if not 1 <= self.default_cpu <= CPU_MAX:
            raise ValueError(f"default cpu {self.default_cpu} is outside 1..{CPU_MAX}")
        if not MEMORY_MIN_MB <= self.default_memory_mb <= MEMORY_MAX_MB:
            raise ValueError(
                f"default memory {self.default_memory_mb} MB is outside"
                f" {MEMORY_MIN_MB}..{MEMORY_MAX_MB}"
            )


@dataclass(frozen=True)
class ObjectReference:
    """A Secret or ConfigMap of the pod's namespace that translation will read."""

    name: str
    optional: bool
    """True when every reference to it is optional: a missing object is then skipped."""


@dataclass(frozen=True)
class RequiredObjects:
    """The Secrets and ConfigMaps to fetch before translating a pod, sorted by name."""

    secrets: tuple[ObjectReference, ...] = ()
    config_maps: tuple[ObjectReference, ...] = ()

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(ref.name for ref in self.secrets)

    @property
    def config_map_names(self) -> tuple[str, ...]:
        return tuple(ref.name for ref in self.config_maps)
