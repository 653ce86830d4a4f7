"""Workload manifests the tests and benchmarks schedule onto virtual nodes."""

from __future__ import annotations

from typing import Any

from nodes.settings import PROVIDER_TAINT

TOLERATION: dict[str, Any] = {**PROVIDER_TAINT, "operator": "Equal"}
"""What a pod needs to run on a virtual node at all."""

CONTAINER: dict[str, Any] = {
    "name": "main",
    "image": "nginx:1.27",
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
}


def workload(
    name: str,
    replicas: int,
    *,
    node: str | None = None,
    match: list[dict[str, Any]] | None = None,
    spread_over: str | None = None,
    container: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Deployment ``name`` tolerating the provider taint, placed on ``node`` (by host
    name), on nodes matching the ``match`` expressions, and/or spread evenly (maxSkew 1)
    over the values of the node label ``spread_over``."""
    spec: dict[str, Any] = {
        "tolerations": [TOLERATION],
        "terminationGracePeriodSeconds": 30,
        "containers": [container or CONTAINER],
    }
    if node is not None:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    if match:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": match}]
                }
            }
        }
    if spread_over is not None:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": spread_over,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": name}},
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def label_in(key: str, values: list[str]) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": values}
