"""Every object the chart renders, sent to the real API server with server-side dry-run."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeError

from .chart import VALUE_SETS, one, render
from .kube import create, ensure_crds

pytestmark = pytest.mark.anyio

_DURATION = (
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)

# The part of the Prometheus Operator's ServiceMonitor CRD the chart uses, with its
# types and duration pattern; with strict field validation an unknown field is refused.
SERVICE_MONITOR_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ServiceMonitor",
            "listKind": "ServiceMonitorList",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "required": ["selector"],
                                "properties": {
                                    "selector": {
                                        "type": "object",
                                        "properties": {
                                            "matchLabels": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            }
                                        },
                                    },
                                    "namespaceSelector": {
                                        "type": "object",
                                        "properties": {
                                            "any": {"type": "boolean"},
                                            "matchNames": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                        },
                                    },
                                    "endpoints": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "port": {"type": "string"},
                                                "path": {"type": "string"},
                                                "interval": {
                                                    "type": "string",
                                                    "pattern": _DURATION,
                                                },
                                                "scrapeTimeout": {
                                                    "type": "string",
                                                    "pattern": _DURATION,
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.mark.parametrize("case", list(VALUE_SETS))
async def test_every_rendered_object_is_accepted_by_the_api_server(
    case: str, kube_api: ApiClient, namespace: str
) -> None:
    admin = KubeClient(kube_api, node="test")
    await ensure_crds(admin, [SERVICE_MONITOR_CRD])
    objects = render(VALUE_SETS[case], release=f"r{uuid.uuid4().hex[:6]}", namespace=namespace)
    assert objects
    for manifest in objects:
        accepted = await create(admin, manifest, dry_run=True)
        assert accepted["kind"] == manifest["kind"]
        assert accepted["metadata"]["name"] == manifest["metadata"]["name"]


async def test_the_supervisor_pod_is_admitted_under_the_restricted_pod_security_standard(
    kube_api: ApiClient, namespace: str
) -> None:
    admin = KubeClient(kube_api, node="test")
    await admin.patch(
        f"/api/v1/namespaces/{namespace}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    objects = render(VALUE_SETS["one node"], release="psa", namespace=namespace)
    # The ServiceAccount admission plugin refuses pods of a ServiceAccount that is not there.
    await create(admin, one(objects, "ServiceAccount"))
    template = one(objects, "Deployment")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "salad-vk", "namespace": namespace, **template["metadata"]},
        "spec": template["spec"],
    }
    admitted = await create(admin, pod, dry_run=True)
    assert admitted["spec"]["securityContext"]["runAsUser"] == 65532

    # The namespace really enforces: one relaxed field and the same pod is refused.
    relaxed = copy.deepcopy(pod)
    relaxed["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(KubeError) as refused:
        await create(admin, relaxed, dry_run=True)
    assert refused.value.status == 403
    assert "restricted" in refused.value.message
