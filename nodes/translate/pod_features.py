"""Pod and container features a SaladCloud container group has no room for.

A group runs one container, on someone else's machine, without the node's network,
process or IPC namespaces: pods that need more are refused with the field that asks
for it, instead of running without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodes.translate.pod_json import integer, items, objs
from nodes.translate.refusal import UNSUPPORTED_POD_FEATURE, Problems

_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def check_containers(spec: Mapping[str, Any], problems: Problems) -> None:
    if items(spec.get("initContainers")):
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            "spec.initContainers",
            "init containers are not supported: a SaladCloud container group runs one container",
        )
    count = len(items(spec.get("containers")))
    if count != 1:
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            "spec.containers",
            f"the pod has {count} containers; a SaladCloud container group runs exactly one",
        )


def check_container(container: Mapping[str, Any], path: str, problems: Problems) -> None:
    if container.get("workingDir"):
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            f"{path}.workingDir",
            "SaladCloud runs the container in the image's working directory and cannot change it",
        )
    for index, port in enumerate(objs(container.get("ports"))):
        if integer(port.get("hostPort")):
            problems.add(
                UNSUPPORTED_POD_FEATURE,
                f"{path}.ports[{index}].hostPort",
                "host ports are not supported: the container does not run on this node",
            )


def check_container_devices(container: Mapping[str, Any], path: str, problems: Problems) -> None:
    if items(container.get("volumeDevices")):
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            f"{path}.volumeDevices",
            "block devices cannot be given to a SaladCloud container",
        )


def check_pod_level(spec: Mapping[str, Any], problems: Problems) -> None:
    if items(spec.get("ephemeralContainers")):
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            "spec.ephemeralContainers",
            "ephemeral containers are not supported by SaladCloud",
        )
    for flag in _HOST_NAMESPACES:
        if spec.get(flag) is True:
            problems.add(
                UNSUPPORTED_POD_FEATURE,
                f"spec.{flag}",
                "the container does not run on this node, so it cannot share its namespaces",
            )
