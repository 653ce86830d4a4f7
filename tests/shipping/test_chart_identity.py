"""The supervisor runs with the chart's ServiceAccount and RBAC, and with nothing more."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeError, KubeNotFound
from supervisor.kubelet.auth import User
from supervisor.kubelet.routes import attributes
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.pki import KUBELET_CLIENT_USER
from tests.manifests import CONTAINER, label_in, workload
from tests.nodes.harness import eventually, phase, pods
from tests.supervisor.harness import ORG, simulator

from .kube import service_account_identity
from .release import release_values, running_release

pytestmark = pytest.mark.anyio

WORKER_TOKEN = "tok-identity-test-3f9c1e7a"


def worker(name: str, projects: list[str]) -> dict[str, object]:
    """A Deployment for the release's nodes whose container reads a Secret."""
    container = {
        **CONTAINER,
        "image": "worker:1",
        "env": [
            {
                "name": "TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "worker-token", "key": "token"}},
            }
        ],
    }
    return workload(name, 2, match=[label_in("salad.com/project", projects)], container=container)


async def test_the_supervisor_serves_its_nodes_under_the_charts_service_account_alone(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    admin = KubeClient(kube_api, node="test")
    prefix = f"i{uuid.uuid4().hex[:6]}"
    nodes = {f"{prefix}-a": f"{prefix}-pa", f"{prefix}-b": f"{prefix}-pb"}
    projects = list(nodes.values())
    async with simulator(projects) as sim:
        values = release_values(sim, nodes, [namespace])
        async with running_release(
            kube_api, control_plane.kubeconfig, namespace, values, tmp_path
        ) as release:
            as_sa = release.as_service_account
            # Every request really is the ServiceAccount's, as its token would make it.
            review = await as_sa.post(
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
            user, groups = service_account_identity(namespace, release.service_account)
            assert review["status"]["userInfo"]["username"] == user
            assert set(groups) <= set(review["status"]["userInfo"]["groups"])

            async def registered() -> bool:
                return all(release.supervisor.supervisor.readiness().values())

            await eventually(registered, 30, "both nodes registered and Ready")

            # The kubelet API reads the cluster's client CA and asks TokenReviews and
            # SubjectAccessReviews with the chart's RBAC.
            kubelet = release.supervisor.supervisor.kubelet
            assert kubelet.tls.client_ca and "BEGIN CERTIFICATE" in kubelet.tls.client_ca
            token = await admin.post(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/default/token",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
            )
            caller = await kubelet.reviewer.user_of_token(token["status"]["token"])
            assert caller is not None
            assert caller.name == f"system:serviceaccount:{namespace}:default"
            apiserver = User(KUBELET_CLIENT_USER)
            assert await kubelet.reviewer.allowed(
                apiserver, attributes("GET", "/pods", next(iter(nodes)))
            )
            assert not await kubelet.reviewer.allowed(caller, attributes("GET", "/pods", ""))
            for name in nodes:
                lease = await admin.get(
                    f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
                )
                assert lease["spec"]["holderIdentity"]

            # A pod whose container takes a value from a Secret: the node reads it with
            # the `get` the ClusterRole grants.
            await admin.post(
                f"/api/v1/namespaces/{namespace}/secrets",
                {"metadata": {"name": "worker-token"}, "stringData": {"token": WORKER_TOKEN}},
            )
            apps = f"/apis/apps/v1/namespaces/{namespace}/deployments"
            await admin.post(apps, worker("reader", projects))

            async def running() -> bool:
                found = await pods(admin, namespace, "app=reader")
                return len(found) == 2 and all(phase(p) == "Running" for p in found)

            await eventually(running, 60, "2 pods Running")
            groups_env = [
                g.document["container"]["environment_variables"]
                for p in projects
                for g in sim.groups(ORG, p, include_deleted=False)
            ]
            assert [env["TOKEN"] for env in groups_env] == [WORKER_TOKEN, WORKER_TOKEN]

            # ...but it may not enumerate Secrets, anywhere.
            for path in ("/api/v1/secrets", f"/api/v1/namespaces/{namespace}/secrets"):
                with pytest.raises(KubeError) as refused:
                    await as_sa.get(path)
                assert refused.value.status == 403, path

            await admin.patch(f"{apps}/reader/scale", {"spec": {"replicas": 0}}, kind="merge")

            async def cleaned_up() -> bool:
                left = await pods(admin, namespace, "app=reader")
                groups = sum(len(sim.groups(ORG, p, include_deleted=False)) for p in projects)
                return not left and groups == 0

            await eventually(cleaned_up, 60, "no pod and no group left")

            # Removing a node from the values decommissions it: cordon, then delete its
            # Lease and Node, all with the chart's RBAC and under its policy.
            gone, kept = list(nodes)
            smaller = {**values, "nodes": [n for n in values["nodes"] if n["name"] == kept]}
            await release.upgrade(smaller)

            async def decommissioned() -> bool:
                try:
                    await admin.get(f"/api/v1/nodes/{gone}")
                except KubeNotFound:
                    return True
                return False

            await eventually(decommissioned, 30, f"node {gone} deleted")
            with pytest.raises(KubeNotFound):
                await admin.get(
                    f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{gone}"
                )
            assert (await admin.get(f"/api/v1/nodes/{kept}"))["metadata"]["name"] == kept
