"""Container resources as SaladCloud allocates them: whole vCPUs, MB, one GPU at most.

Limits win over requests because SaladCloud reserves what it is asked for, and a
container should get at least what it may use. Values round up (a container never
gets less than it asked for) to SaladCloud's minimums. SaladCloud's "megabytes" are
read as MiB: its steps (1024, 2048, ...) line up with ``1Gi``, ``2Gi``, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nodes.translate.context import TranslationContext
from nodes.translate.gpu_classes import resolve_gpu_classes
from nodes.translate.pod_json import obj
from nodes.translate.quantity import MIB, ceil_div, parse_quantity
from nodes.translate.refusal import (
    INVALID_NODE_CONFIGURATION,
    UNSUPPORTED_RESOURCE_REQUEST,
    Problems,
)
from nodes.translate.spec_bounds import (
    CPU_MAX,
    GPU_CLASSES_MAX,
    MEMORY_MAX_MB,
    MEMORY_MIN_MB,
    SHM_MAX_MB,
    SHM_MIN_MB,
    STORAGE_MAX_BYTES,
    STORAGE_MIN_BYTES,
)
from nodes.translate.volumes import SharedMemory

GPU = "nvidia.com/gpu"
_KNOWN = ("cpu", "memory", "ephemeral-storage", GPU)


@dataclass(frozen=True)
class Allocation:
    """What the container group will get."""

    cpu: int
    memory_mb: int
    storage_bytes: int | None
    shm_mb: int | None
    gpu_classes: tuple[str, ...]


@dataclass(frozen=True)
class Declared:
    """The container's own limits and requests, as quantities (``None``: not set)."""

    limits: Mapping[str, Fraction]
    requests: Mapping[str, Fraction]

    def wanted(self, resource: str) -> Fraction | None:
        """The limit, else the request."""
        limit = self.limits.get(resource)
        return limit if limit is not None else self.requests.get(resource)

    def field(self, path: str, resource: str) -> str:
        """Where :meth:`wanted` read ``resource`` from."""
        kind = "limits" if resource in self.limits or resource not in self.requests else "requests"
        return f"{path}.resources.{kind}['{resource}']"


def declared_resources(container: Mapping[str, Any], path: str, problems: Problems) -> Declared:
    resources = obj(container.get("resources"))
    parsed: dict[str, dict[str, Fraction]] = {"limits": {}, "requests": {}}
    for kind, amounts in parsed.items():
        for name, raw in obj(resources.get(kind)).items():
            field = f"{path}.resources.{kind}['{name}']"
            if name not in _KNOWN:
                problems.add(
                    UNSUPPORTED_RESOURCE_REQUEST,
                    field,
                    f"SaladCloud offers only {', '.join(_KNOWN)}",
                )
                continue
            amount = parse_quantity(raw)
            if amount is None or amount < 0:
                problems.add(UNSUPPORTED_RESOURCE_REQUEST, field, f"{raw!r} is not a quantity")
                continue
            amounts[name] = amount
    return Declared(limits=parsed["limits"], requests=parsed["requests"])


def allocate(
    declared: Declared,
    path: str,
    *,
    annotated_gpu_classes: tuple[str, ...] | None,
    shared_memory: SharedMemory | None,
    annotated_shm_bytes: Fraction | None,
    shm_field: str,
    ctx: TranslationContext,
    problems: Problems,
) -> Allocation:
    cpu_wanted = declared.wanted("cpu")
    cpu = ctx.default_cpu if cpu_wanted is None else max(1, ceil_div(cpu_wanted, 1))
    if cpu > CPU_MAX:
        problems.add(
            UNSUPPORTED_RESOURCE_REQUEST,
            declared.field(path, "cpu"),
            f"{cpu} vCPUs; SaladCloud allocates at most {CPU_MAX}",
        )
    memory_wanted = declared.wanted("memory")
    memory_mb = (
        ctx.default_memory_mb
        if memory_wanted is None
        else max(MEMORY_MIN_MB, ceil_div(memory_wanted, MIB))
    )
    if memory_mb > MEMORY_MAX_MB:
        problems.add(
            UNSUPPORTED_RESOURCE_REQUEST,
            declared.field(path, "memory"),
            f"{memory_mb} MiB; SaladCloud allocates at most {MEMORY_MAX_MB}",
        )
    storage_wanted = declared.wanted("ephemeral-storage")
    storage = (
        None if storage_wanted is None else max(STORAGE_MIN_BYTES, ceil_div(storage_wanted, 1))
    )
    if storage is not None and storage > STORAGE_MAX_BYTES:
        problems.add(
            UNSUPPORTED_RESOURCE_REQUEST,
            declared.field(path, "ephemeral-storage"),
            f"{storage} bytes; SaladCloud allocates at most {STORAGE_MAX_BYTES}",
        )
    return Allocation(
        cpu=cpu,
        memory_mb=memory_mb,
        storage_bytes=storage,
        shm_mb=_shared_memory_mb(
            shared_memory, annotated_shm_bytes, memory_mb, shm_field, problems
        ),
        gpu_classes=_gpu_classes(
            declared, declared.field(path, GPU), annotated_gpu_classes, ctx, problems
        ),
    )


def _gpu_classes(
    declared: Declared,
    gpu_field: str,
    annotated: tuple[str, ...] | None,
    ctx: TranslationContext,
    problems: Problems,
) -> tuple[str, ...]:
    wanted = declared.wanted(GPU)
    gpus = Fraction(0) if wanted is None else wanted
    if gpus.denominator != 1 or gpus > 1:
        problems.add(
            UNSUPPORTED_RESOURCE_REQUEST,
            gpu_field,
            f"{gpus} GPUs; a SaladCloud instance has exactly one GPU (ask for 1, or 0 for none)",
        )
        return ()
    if annotated is not None:
        return annotated
    if gpus == 0:
        return ()
    if not ctx.default_gpu_classes:
        problems.add(
            UNSUPPORTED_RESOURCE_REQUEST,
            gpu_field,
            "a GPU needs GPU classes: set the salad.com/gpu-classes annotation "
            "(this node has no default GPU classes)",
        )
        return ()
    resolved = resolve_gpu_classes(ctx.default_gpu_classes, ctx.gpu_classes)
    if resolved.unknown or len(resolved.ids) > GPU_CLASSES_MAX:
        problems.add(
            INVALID_NODE_CONFIGURATION,
            gpu_field,
            f"the node's default GPU classes are not all offered by organization "
            f"{ctx.organization} (unknown: {list(resolved.unknown)})",
        )
        return ()
    return resolved.ids


def _shared_memory_mb(
    volume: SharedMemory | None,
    annotated_bytes: Fraction | None,
    memory_mb: int,
    field: str,
    problems: Problems,
) -> int | None:
    if annotated_bytes is not None:
        size = annotated_bytes
    elif volume is not None and volume.size_limit is not None:
        size = volume.size_limit
    elif volume is not None:
        # A memory emptyDir without a limit may grow to the container's memory.
        return max(SHM_MIN_MB, memory_mb)
    else:
        return None
    shm_mb = max(SHM_MIN_MB, ceil_div(size, MIB))
    if shm_mb > SHM_MAX_MB:
        problems.add(
            UNSUPPORTED_RESOURCE_REQUEST,
            field,
            f"{shm_mb} MiB of shared memory; SaladCloud allows at most {SHM_MAX_MB}",
        )
        return None
    return shm_mb
