"""The ``salad.com/*`` pod annotations: SaladCloud settings Kubernetes has no field for.

Names follow the Go virtual kubelet (``gpu-classes``, ``country-codes``,
``container-group-priority``, ``networking-*``, ``logging-*``) so pods move over
unchanged; the rest of what the API offers is added under the same scheme. An unknown
``salad.com/`` annotation is refused rather than ignored: a typo (``country-code``)
would otherwise drop a setting without a word. ``docs/annotations.md`` is the
reference for users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from config.country_codes import COUNTRY_CODES as KNOWN_COUNTRY_CODES
from nodes.saladcloud.models import (
    PRIORITIES,
    ContainerLogging,
    CreateNetworking,
    GpuClass,
    Priority,
)
from nodes.translate.gpu_classes import resolve_gpu_classes
from nodes.translate.logging_providers import LOGGING_ANNOTATIONS, container_logging
from nodes.translate.pod_json import container_port
from nodes.translate.quantity import parse_quantity
from nodes.translate.refusal import INVALID_ANNOTATION, Problems, annotation_field
from nodes.translate.spec_bounds import GPU_CLASSES_MAX, NETWORK_TIMEOUT_MAX

PREFIX = "salad.com/"

GPU_CLASSES = "salad.com/gpu-classes"
COUNTRY_CODES = "salad.com/country-codes"
PRIORITY = "salad.com/container-group-priority"
NETWORKING_PROTOCOL = "salad.com/networking-protocol"
NETWORKING_PORT = "salad.com/networking-port"
NETWORKING_AUTH = "salad.com/networking-auth"
NETWORKING_LOAD_BALANCER = "salad.com/networking-load-balancer"
NETWORKING_CLIENT_REQUEST_TIMEOUT = "salad.com/networking-client-request-timeout"
NETWORKING_SERVER_RESPONSE_TIMEOUT = "salad.com/networking-server-response-timeout"
NETWORKING_SINGLE_CONNECTION_LIMIT = "salad.com/networking-single-connection-limit"
IMAGE_CACHING = "salad.com/image-caching"
SHM_SIZE = "salad.com/shm-size"

ANY_COUNTRY = "any"
"""``salad.com/country-codes: any`` lifts the node's default country restriction."""

_NETWORKING = (
    NETWORKING_PROTOCOL,
    NETWORKING_PORT,
    NETWORKING_AUTH,
    NETWORKING_LOAD_BALANCER,
    NETWORKING_CLIENT_REQUEST_TIMEOUT,
    NETWORKING_SERVER_RESPONSE_TIMEOUT,
    NETWORKING_SINGLE_CONNECTION_LIMIT,
)
_LOAD_BALANCERS = ("round_robin", "least_number_of_connections")

KNOWN_ANNOTATIONS: frozenset[str] = frozenset(
    {GPU_CLASSES, COUNTRY_CODES, PRIORITY, IMAGE_CACHING, SHM_SIZE, *_NETWORKING}
    | LOGGING_ANNOTATIONS
)
"""Every ``salad.com/`` pod annotation this node reads; any other one is refused."""


@dataclass(frozen=True)
class SaladSettings:
    """What the annotations ask for; ``None`` means "not set"."""

    gpu_classes: tuple[str, ...] | None = None
    """GPU class ids."""
    country_codes: tuple[str, ...] | None = None
    """``()`` means any country (``salad.com/country-codes: any``)."""
    priority: Priority | None = None
    networking: CreateNetworking | None = None
    logging: ContainerLogging | None = None
    image_caching: bool | None = None
    shm_bytes: Fraction | None = None


def salad_settings(
    annotations: Mapping[str, str],
    container: Mapping[str, Any],
    *,
    gpu_classes: Sequence[GpuClass],
    secrets: Mapping[str, Mapping[str, str]],
    problems: Problems,
) -> SaladSettings:
    """Read every ``salad.com/`` annotation; problems are recorded, not raised."""
    for name in sorted(annotations):
        if name.startswith(PREFIX) and name not in KNOWN_ANNOTATIONS:
            problems.add(
                INVALID_ANNOTATION,
                annotation_field(name),
                "is not an annotation this node knows; see docs/annotations.md",
            )
    return SaladSettings(
        gpu_classes=_gpu_classes(annotations, gpu_classes, problems),
        country_codes=_country_codes(annotations, problems),
        priority=_priority(annotations, problems),
        networking=_networking(annotations, container, problems),
        logging=container_logging(annotations, secrets, problems),
        image_caching=_boolean(annotations, IMAGE_CACHING, problems),
        shm_bytes=_shm_size(annotations, problems),
    )


def _listed(raw: str) -> list[str]:
    return [entry.strip() for entry in raw.split(",") if entry.strip()]


def _gpu_classes(
    annotations: Mapping[str, str], known: Sequence[GpuClass], problems: Problems
) -> tuple[str, ...] | None:
    raw = annotations.get(GPU_CLASSES)
    if raw is None:
        return None
    wanted = _listed(raw)
    if not wanted:
        problems.add(INVALID_ANNOTATION, annotation_field(GPU_CLASSES), "lists no GPU class")
        return None
    resolved = resolve_gpu_classes(wanted, known)
    if resolved.unknown:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(GPU_CLASSES),
            f"unknown GPU class {resolved.unknown[0]!r}; the organization offers "
            f"{sorted(gpu.name for gpu in known)}",
        )
        return None
    if len(resolved.ids) > GPU_CLASSES_MAX:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(GPU_CLASSES),
            f"{len(resolved.ids)} GPU classes; SaladCloud accepts at most {GPU_CLASSES_MAX}",
        )
        return None
    return resolved.ids


def _country_codes(annotations: Mapping[str, str], problems: Problems) -> tuple[str, ...] | None:
    raw = annotations.get(COUNTRY_CODES)
    if raw is None:
        return None
    codes = [code.lower() for code in _listed(raw)]
    if codes == [ANY_COUNTRY]:
        return ()
    if not codes:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(COUNTRY_CODES),
            f"lists no country code (write {ANY_COUNTRY!r} to allow every country)",
        )
        return None
    for code in codes:
        if code not in KNOWN_COUNTRY_CODES:
            problems.add(
                INVALID_ANNOTATION,
                annotation_field(COUNTRY_CODES),
                f"{code!r} is not an ISO 3166-1 alpha-2 country code SaladCloud knows",
            )
            return None
    return tuple(dict.fromkeys(codes))


def _priority(annotations: Mapping[str, str], problems: Problems) -> Priority | None:
    raw = annotations.get(PRIORITY)
    if raw is None:
        return None
    priority = raw.strip().lower()
    if priority not in PRIORITIES:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(PRIORITY),
            f"{raw!r} is not one of {', '.join(PRIORITIES)}",
        )
        return None
    return priority


def _boolean(annotations: Mapping[str, str], name: str, problems: Problems) -> bool | None:
    raw = annotations.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in ("true", "false"):
        problems.add(
            INVALID_ANNOTATION, annotation_field(name), f"{raw!r} is neither true nor false"
        )
        return None
    return value == "true"


def _shm_size(annotations: Mapping[str, str], problems: Problems) -> Fraction | None:
    raw = annotations.get(SHM_SIZE)
    if raw is None:
        return None
    size = parse_quantity(raw)
    if size is None or size <= 0:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(SHM_SIZE),
            f"{raw!r} is not a positive Kubernetes quantity such as 2Gi",
        )
        return None
    return size


def _bounded(
    annotations: Mapping[str, str], name: str, low: int, high: int, problems: Problems
) -> int | None:
    raw = annotations.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if not value.isdigit() or not low <= int(value) <= high:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(name),
            f"{raw!r} is not a whole number in {low}..{high}",
        )
        return None
    return int(value)


def _networking(
    annotations: Mapping[str, str], container: Mapping[str, Any], problems: Problems
) -> CreateNetworking | None:
    # No port annotation, no networking: a declared containerPort alone does not expose
    # anything, since the Container Gateway makes the port reachable from the internet.
    present = [name for name in _NETWORKING if name in annotations]
    if not present:
        return None
    if NETWORKING_PORT not in annotations:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(NETWORKING_PORT),
            f"is required when {present[0]} is set",
        )
        return None
    raw_port = annotations[NETWORKING_PORT].strip()
    port = container_port(container, raw_port)
    if port is None:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(NETWORKING_PORT),
            f"{raw_port!r} is neither a port number (1..65535) nor the name of a container port",
        )
        port = None
    protocol = annotations.get(NETWORKING_PROTOCOL, "http").strip().lower()
    if protocol != "http":
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(NETWORKING_PROTOCOL),
            f"{protocol!r} is not a protocol SaladCloud offers (only http)",
        )
    if NETWORKING_AUTH not in annotations:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(NETWORKING_AUTH),
            f"is required with {NETWORKING_PORT}; true makes callers send a SaladCloud API "
            "key, false opens the port to the whole internet",
        )
    auth = _boolean(annotations, NETWORKING_AUTH, problems)
    load_balancer = annotations.get(NETWORKING_LOAD_BALANCER)
    if load_balancer is not None and load_balancer.strip().lower() not in _LOAD_BALANCERS:
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(NETWORKING_LOAD_BALANCER),
            f"{load_balancer!r} is not one of {', '.join(_LOAD_BALANCERS)}",
        )
        load_balancer = None
    client_timeout = _bounded(
        annotations, NETWORKING_CLIENT_REQUEST_TIMEOUT, 1, NETWORK_TIMEOUT_MAX, problems
    )
    server_timeout = _bounded(
        annotations, NETWORKING_SERVER_RESPONSE_TIMEOUT, 1, NETWORK_TIMEOUT_MAX, problems
    )
    single = _boolean(annotations, NETWORKING_SINGLE_CONNECTION_LIMIT, problems)
    if port is None or auth is None or protocol != "http":
        return None
    return CreateNetworking.model_validate(
        {
            "port": port,
            "protocol": "http",
            "auth": auth,
            "load_balancer": load_balancer.strip().lower() if load_balancer else None,
            "client_request_timeout": client_timeout,
            "server_response_timeout": server_timeout,
            "single_connection_limit": single,
        }
    )
