"""Pods, contexts and checks the translation tests share."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from nodes.saladcloud.models import GpuClass, GpuClassPrice, request_json
from nodes.translate import Refusal, TranslationContext, container_group_for_pod

UID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
UID_DIGITS = "0a1b2c3d"
NODE_NAME = "salad-acme-demo"
NODE_IP = "10.1.2.3"
CONTAINER = "spec.containers[0]"

RTX_4090 = GpuClass(
    id="ed563892-aacd-40f5-80b7-90c9be6c759b",
    name="RTX 4090 (24 GB)",
    prices=[GpuClassPrice(priority="high", price="0.30")],
)
RTX_3090 = GpuClass(
    id="a5db5c50-cbcb-4596-ae80-6a0c8090d80f",
    name="RTX 3090 (24 GB)",
    prices=[GpuClassPrice(priority="high", price="0.20")],
)

TOKEN_VOLUME: dict[str, Any] = {
    "name": "kube-api-access-x7k2p",
    "projected": {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
    },
}
TOKEN_MOUNT = {
    "name": "kube-api-access-x7k2p",
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
    "readOnly": True,
}


def make_pod(
    *,
    container: Mapping[str, Any] | None = None,
    spec: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    name: str = "web-7d9f8c6b5d-x2x7k",
    namespace: str = "default",
    uid: str = UID,
    status: Mapping[str, Any] | None = None,
    token_volume: bool = True,
) -> dict[str, Any]:
    """A pod as the API server returns it once scheduled on the node: defaults applied,
    the service-account token volume injected. ``container`` and ``spec`` are merged
    over the defaults (a key set to ``None`` is removed)."""
    main: dict[str, Any] = {
        "name": "app",
        "image": "ghcr.io/acme/app:1.0",
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [dict(TOKEN_MOUNT)] if token_volume else [],
    }
    _merge(main, container or {})
    pod_spec: dict[str, Any] = {
        "containers": [main],
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "nodeName": NODE_NAME,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "volumes": [copy.deepcopy(TOKEN_VOLUME)] if token_volume else [],
    }
    _merge(pod_spec, spec or {})
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    if labels is not None:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": pod_spec,
        "status": dict(status)
        if status is not None
        else {"phase": "Pending", "qosClass": "BestEffort"},
    }


def _merge(target: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)


def make_context(**overrides: Any) -> TranslationContext:
    values: dict[str, Any] = {
        "node_name": NODE_NAME,
        "node_ip": NODE_IP,
        "organization": "acme",
        "project": "demo",
        "gpu_classes": (RTX_4090, RTX_3090),
        "kubernetes_version": "v1.31.2",
    }
    values.update(overrides)
    return TranslationContext(**values)


BodyCheck = Callable[[dict[str, Any]], None]
BODY_CHECK: ContextVar[BodyCheck | None] = ContextVar("BODY_CHECK", default=None)
"""Set by ``tests/translate/conftest.py`` in the ``[spec]`` run of a ``spec_checked`` test."""


def create_body(pod: Mapping[str, Any], ctx: TranslationContext | None = None) -> dict[str, Any]:
    """The create body for ``pod``, which must translate (and, in the ``[spec]`` run of a
    ``spec_checked`` test, must satisfy SaladCloud's spec)."""
    result = container_group_for_pod(pod, ctx or make_context())
    assert not isinstance(result, Refusal), f"refused: {result}"
    body = request_json(result)
    check = BODY_CHECK.get()
    if check is not None:
        check(body)
    return body


def refusal_of(pod: Mapping[str, Any], ctx: TranslationContext | None = None) -> Refusal:
    result = container_group_for_pod(pod, ctx or make_context())
    assert isinstance(result, Refusal), f"translated, but a refusal was expected: {result}"
    return result
