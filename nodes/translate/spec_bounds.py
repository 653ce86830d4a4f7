"""Bounds of ``ContainerGroupPrototype`` fields (salad-cloud.yaml 0.9.0-alpha.17).

Translation checks every value it emits against these, so that a pod SaladCloud
would answer with a 400 is refused here, naming the Kubernetes field it came from.
"""

from __future__ import annotations

from nodes.translate.refusal import Problems

IMAGE_MAX = 2048
COMMAND_ITEMS_MAX = 100
COMMAND_ITEM_MAX = 1000
ENV_VALUE_MAX = 1000
CPU_MAX = 1024
MEMORY_MIN_MB = 1024
MEMORY_MAX_MB = 1073741824
SHM_MIN_MB = 64
SHM_MAX_MB = 1073741824
STORAGE_MIN_BYTES = 1073741824
STORAGE_MAX_BYTES = 1125899906842624
GPU_CLASSES_MAX = 100
PORT_MIN = 1
PORT_MAX = 65535
NETWORK_TIMEOUT_MAX = 100000
PROBE_HEADERS_MAX = 50
PROBE_HEADER_NAME_MAX = 256
PROBE_HEADER_VALUE_MAX = 1024
PROBE_PATH_MAX = 2048
PROBE_EXEC_ITEM_MAX = 2048
PROBE_GRPC_SERVICE_MAX = 1024
LOGGING_VALUE_MAX = 1000
LOGGING_LIST_MAX = 1000
REGISTRY_VALUE_MAX = 10000

_LINE_BREAKS = ("\n", "\r", "\u2028", "\u2029")


def single_line(value: str) -> bool:
    """Whether ``value`` matches the spec's ``^.*$``: in the ECMA-262 regular
    expressions JSON Schema uses, ``.`` matches no line terminator."""
    return not any(mark in value for mark in _LINE_BREAKS)


def check_text(
    value: str,
    *,
    field: str,
    what: str,
    reason: str,
    problems: Problems,
    maximum: int,
    minimum: int = 1,
    permanent: bool = True,
) -> bool:
    """Record a problem unless ``value`` is a single line of ``minimum..maximum``
    characters. ``what`` names the value in the message; the value itself is never
    shown, since it may come from a Secret."""
    if len(value) < minimum:
        problems.add(
            reason, field, f"{what} is empty; SaladCloud requires a value", permanent=permanent
        )
        return False
    if len(value) > maximum:
        problems.add(
            reason,
            field,
            f"{what} is {len(value)} characters long; SaladCloud accepts at most {maximum}",
            permanent=permanent,
        )
        return False
    if not single_line(value):
        problems.add(
            reason,
            field,
            f"{what} spans several lines; SaladCloud accepts only single-line values",
            permanent=permanent,
        )
        return False
    return True
