"""Kubernetes request accounting uses bounded labels derived from the path."""

import pytest

from nodes.kube.client import resource_of


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/namespaces/ns/pods/p/status", "pods/status"),
        ("/api/v1/namespaces/ns/pods/p", "pods"),
        ("/api/v1/pods", "pods"),
        ("/api/v1/nodes/n/status", "nodes/status"),
        ("/api/v1/nodes/n", "nodes"),
        ("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n", "leases"),
        ("/api/v1/namespaces/ns/events", "events"),
    ],
)
def test_resource_label(path: str, resource: str) -> None:
    assert resource_of(path) == resource
