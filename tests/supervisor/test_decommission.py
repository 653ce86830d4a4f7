"""Retiring a node finishes what it starts — and stops when the removal is taken back."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from config import DecommissionPolicy
from nodes.kube import KubeConflict, KubeError, KubeNotFound
from nodes.settings import CORDONED_BY
from supervisor.decommission import DrainFailed, decommission, drain, remove_node_objects
from tests.manifests import TOLERATION
from tests.nodes.harness import eventually, phase

from .harness import ConfigMapDir, key_of, projects_yaml, running_supervisor, simulator

pytestmark = pytest.mark.anyio


class FlakyKube:
    """Answers like an API server that fails the first pod list with a 503."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._pods: list[dict[str, Any]] = [
            {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}
        ]
        self._failed = False

    async def patch(self, path: str, body: Any, kind: str = "strategic") -> dict[str, Any]:
        self.calls.append(("PATCH", path))
        return {}

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        self.calls.append(("GET", path))
        if not self._failed:
            self._failed = True
            raise KubeError(503, "ServiceUnavailable", "try again", "GET", path)
        return {"items": self._pods}

    async def delete(self, path: str, body: Any = None) -> dict[str, Any]:
        self.calls.append(("DELETE", path))
        if "/pods/" in path:
            name = path.rsplit("/", 1)[-1]
            self._pods = [p for p in self._pods if p["metadata"]["name"] != name]
            return {}
        raise KubeNotFound(404, "NotFound", "gone", "DELETE", path)


async def test_a_transient_error_during_a_drain_is_retried_and_the_node_still_removed() -> None:
    kube = FlakyKube()
    stopped: list[bool] = []

    async def stop() -> None:
        stopped.append(True)

    await decommission(kube, "n", DecommissionPolicy.DRAIN, stop, 30.0)  # type: ignore[arg-type]
    assert ("DELETE", "/api/v1/namespaces/ns/pods/p") in kube.calls
    assert stopped == [True]
    assert ("DELETE", "/api/v1/nodes/n") in kube.calls
    assert (
        "DELETE",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n",
    ) in kube.calls


async def test_a_drain_that_never_reached_the_api_server_fails_instead_of_saying_done() -> None:
    class Unreachable(FlakyKube):
        async def patch(self, path: str, body: Any, kind: str = "strategic") -> dict[str, Any]:
            raise KubeError(0, "ClientConnectorError", "connection refused", "PATCH", path)

        async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
            raise KubeError(0, "ClientConnectorError", "connection refused", "GET", path)

    with pytest.raises(DrainFailed, match=r"could not drain node n: .*connection refused"):
        await drain(Unreachable(), "n", 0.5)  # type: ignore[arg-type]


async def test_a_drain_leaves_daemonset_pods_to_their_controller_as_kubectl_drain_does() -> None:
    kube = FlakyKube()
    kube._failed = True
    daemon = {
        "metadata": {
            "name": "agent-x1",
            "namespace": "ns",
            "uid": "u2",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": True}
            ],
        }
    }
    kube._pods = [*kube._pods, daemon]

    async def stop() -> None:
        pass

    await decommission(kube, "n", DecommissionPolicy.DRAIN, stop, 30.0)  # type: ignore[arg-type]
    assert ("DELETE", "/api/v1/namespaces/ns/pods/p") in kube.calls
    assert ("DELETE", "/api/v1/namespaces/ns/pods/agent-x1") not in kube.calls
    assert ("DELETE", "/api/v1/nodes/n") in kube.calls


class ClusterOfOneNode:
    """One Node with one pod that never goes (its group cannot be deleted), and the
    node's Lease, held by ``holder``."""

    def __init__(self, holder: str) -> None:
        self.calls: list[tuple[str, str]] = []
        self.node: dict[str, Any] = {"metadata": {"name": "n", "annotations": {}}, "spec": {}}
        self.lease = {"metadata": {"resourceVersion": "7"}, "spec": {"holderIdentity": holder}}
        self.deleted_with: list[Any] = []

    async def patch(self, path: str, body: Any, kind: str = "strategic") -> dict[str, Any]:
        self.calls.append(("PATCH", path))
        self.node["metadata"]["annotations"].update(body["metadata"]["annotations"])
        self.node["spec"].update(body["spec"])
        return self.node

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        self.calls.append(("GET", path))
        if "/leases/" in path:
            return self.lease
        if path == "/api/v1/pods":
            return {"items": [{"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}]}
        return self.node

    async def delete(self, path: str, body: Any = None) -> dict[str, Any]:
        self.calls.append(("DELETE", path))
        self.deleted_with.append(body)
        return {}

    def uncordon(self) -> None:
        """What a node registering again does to a cordon it does not know is a drain's."""
        self.node["metadata"]["annotations"].pop(CORDONED_BY, None)
        self.node["spec"]["unschedulable"] = None


async def test_a_drain_puts_back_a_cordon_that_a_re_registration_lifted() -> None:
    kube = ClusterOfOneNode("me/1")
    async with anyio.create_task_group() as group:
        group.start_soon(drain, kube, "n", 30.0)  # type: ignore[arg-type]
        await eventually(_async(lambda: bool(kube.node["spec"].get("unschedulable"))), 5, "cordon")
        kube.uncordon()
        await eventually(
            _async(lambda: kube.node["metadata"]["annotations"].get(CORDONED_BY) is not None),
            5,
            "cordoned again",
        )
        group.cancel_scope.cancel()
    assert kube.node["spec"]["unschedulable"] is True


async def test_a_replica_that_loses_the_node_mid_drain_stops_and_removes_nothing() -> None:
    kube = ClusterOfOneNode("me/1")
    held = True
    stopped: list[bool] = []

    async def stop() -> None:
        stopped.append(True)

    async with anyio.create_task_group() as group:

        async def retire() -> None:
            removed = await decommission(
                kube,  # type: ignore[arg-type]
                "n",
                DecommissionPolicy.DRAIN,
                stop,
                60.0,
                held=lambda: held,
                holder="me/1",
            )
            assert removed is False

        group.start_soon(retire)
        await eventually(
            _async(lambda: ("DELETE", "/api/v1/namespaces/ns/pods/p") in kube.calls), 5, "drain"
        )
        held = False  # the Lease was taken over
        await eventually(_async(lambda: stopped == [True]), 10, "the slot stopped")
    assert not [c for c in kube.calls if c[0] == "DELETE" and "/pods/" not in c[1]]


async def test_node_and_lease_stay_when_another_replica_holds_the_lease_at_removal() -> None:
    taken = ClusterOfOneNode("other/2")
    assert await remove_node_objects(taken, "n", "me/1") is False  # type: ignore[arg-type]
    assert not [c for c in taken.calls if c[0] == "DELETE"]

    mine = ClusterOfOneNode("me/1")
    assert await remove_node_objects(mine, "n", "me/1") is True  # type: ignore[arg-type]
    assert [c[1] for c in mine.calls if c[0] == "DELETE"] == [
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n",
        "/api/v1/nodes/n",
    ]
    # Only the version read: a claim in between makes the delete a 409, not a theft.
    assert mine.deleted_with[0] == {"preconditions": {"resourceVersion": "7"}}


async def test_a_lease_renewed_just_before_its_removal_is_read_again_and_still_removed() -> None:
    class RenewedOnce(ClusterOfOneNode):
        async def delete(self, path: str, body: Any = None) -> dict[str, Any]:
            if "/leases/" in path and self.lease["metadata"]["resourceVersion"] == "7":
                self.lease["metadata"]["resourceVersion"] = "8"  # our own last renewal
                raise KubeConflict(409, "Conflict", "changed", "DELETE", path)
            return await super().delete(path, body)

    kube = RenewedOnce("me/1")
    assert await remove_node_objects(kube, "n", "me/1") is True  # type: ignore[arg-type]
    assert kube.deleted_with[0] == {"preconditions": {"resourceVersion": "8"}}
    assert ("DELETE", "/api/v1/nodes/n") in kube.calls


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


async def test_a_removal_taken_back_mid_drain_keeps_the_node_and_lifts_the_cordon(
    kube_api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    name = f"d{uuid.uuid4().hex[:6]}"
    project = f"{name}-p"
    async with simulator([project]) as sim:
        config = ConfigMapDir(tmp_path / "config")
        keys = tmp_path / "keys"
        config.write(projects_yaml(sim, keys, {name: project}))
        async with running_supervisor(kube_api, config.path, drain_timeout_seconds=120) as running:
            kube = running.kube

            async def node_ready() -> bool:
                return running.supervisor.readiness().get(name, False)

            await eventually(node_ready, 30, "the node Ready")
            pod_path = f"/api/v1/namespaces/{namespace}/pods/resident"
            await kube.post(
                f"/api/v1/namespaces/{namespace}/pods",
                {
                    "metadata": {"name": "resident"},
                    "spec": {
                        "nodeName": name,
                        "tolerations": [TOLERATION],
                        "containers": [{"name": "main", "image": "nginx", "command": ["nginx"]}],
                    },
                },
            )

            async def resident_running() -> bool:
                return phase(await kube.get(pod_path)) == "Running"

            await eventually(resident_running, 30, "the pod Running")
            # SaladCloud refuses the key: the pod's group cannot be deleted, so the drain
            # waits on it — long enough to take the removal back.
            uid = (await kube.get(f"/api/v1/nodes/{name}"))["metadata"]["uid"]
            sim.revoke_key(key_of(project))
            config.write(projects_yaml(sim, keys, {}))

            async def cordoned() -> bool:
                node = await kube.get(f"/api/v1/nodes/{name}")
                return bool(node["spec"].get("unschedulable"))

            await eventually(cordoned, 15, "the node cordoned for the drain")
            config.write(projects_yaml(sim, keys, {name: project}))
            sim.accept_key(key_of(project))

            async def served_again() -> bool:
                node = await kube.get(f"/api/v1/nodes/{name}")
                return (
                    not node["spec"].get("unschedulable")
                    and CORDONED_BY not in (node["metadata"].get("annotations") or {})
                    and running.supervisor.readiness().get(name, False)
                )

            await eventually(served_again, 30, "the node served again, uncordoned")
            await anyio.sleep(1)
            node = await kube.get(f"/api/v1/nodes/{name}")
            assert node["metadata"]["uid"] == uid, "the Node was kept, not deleted and re-made"
            await kube.delete(f"/api/v1/nodes/{name}")
