"""A node that does not own its Lease sends nothing: the gate at the edge, for real."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from nodes.lease import LeaseLost, claim, lease_path

from .harness import (
    RunningNode,
    deployment,
    events,
    eventually,
    node_settings,
    pods,
    running_node,
    simulator,
)
from .harness import unique_project as new_project

pytestmark = pytest.mark.anyio

MUTATIONS = ("POST", "PUT", "PATCH", "DELETE")


def mutations(sim: object, since: float) -> list[str]:
    return [
        f"{r.method} {r.path}"
        for r in sim.requests()  # type: ignore[attr-defined]
        if r.method in MUTATIONS and r.wall >= since
    ]


async def two_pods_bound_and_tried(node: RunningNode, namespace: str, app: str) -> None:
    """A Deployment of two pods on the node, bound, and given many reconcile passes."""
    await node.kube.post(
        f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment(app, node.name, 2)
    )

    async def bound() -> bool:
        return len(await pods(node.kube, namespace, f"app={app}")) == 2

    await eventually(bound, 30, "2 pods bound to the node")
    await anyio.sleep(3)


async def test_a_node_whose_tenure_ended_creates_nothing_and_writes_no_status(
    kube_api: ApiClient, namespace: str
) -> None:
    project = new_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        node.node.tenure.end("handed off (test)")
        ended = time.monotonic()  # the simulator's request log uses this clock
        await two_pods_bound_and_tried(node, namespace, "gated")

        assert mutations(sim, ended) == []
        assert node.groups() == []
        for pod in await pods(node.kube, namespace, "app=gated"):
            assert not (pod.get("status") or {}).get("containerStatuses"), "no status written"
        await node.kube.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/gated")


class LapsedMembership:
    """The replica's membership, lapsed and back in a new epoch the node's Lease has
    not been renewed in yet: the node is paused, not lost."""

    epoch = 7
    epoch_began = math.inf

    def valid(self, now: float) -> bool:
        return True


async def test_a_paused_node_says_nothing_to_its_pods_and_picks_up_where_it_was(
    kube_api: ApiClient, namespace: str
) -> None:
    project = new_project()
    async with (
        simulator(project) as sim,
        running_node(kube_api, sim, node_settings(project)) as node,
    ):
        tenure = node.node.tenure
        membership = LapsedMembership()
        tenure._standing = membership
        assert tenure.membership_lapsed or not tenure.owned
        paused = time.monotonic()
        await two_pods_bound_and_tried(node, namespace, "paused")

        assert mutations(sim, paused) == []
        for pod in await pods(node.kube, namespace, "app=paused"):
            said = await events(node.kube, namespace, pod["metadata"]["name"])
            assert [e for e in said if e.get("source", {}).get("host") == node.name] == []
            track = node.node.reconciler._tracked.get(f"{namespace}/{pod['metadata']['name']}")
            assert track is None or track.attempts == 0, "a pause is no failure of the pod's"

        # Membership back: the next renewal of the node's Lease proves it ours again.
        membership.epoch_began = -math.inf
        node.node.lease.renew_soon()

        async def created() -> bool:
            return len(node.groups()) == 2

        await eventually(created, 30, "both groups created once the node is ours again")
        await node.kube.delete(f"/apis/apps/v1/namespaces/{namespace}/deployments/paused")


async def test_a_node_that_finds_another_holder_stops_at_its_next_renewal_and_sends_nothing_after(
    kube_api: ApiClient, namespace: str
) -> None:
    project = new_project()
    settings = replace(node_settings(project), lease_renew_interval=1.0)
    admin = KubeClient(kube_api, node="test")
    found_out: list[float] = []
    with pytest.raises(BaseExceptionGroup) as stopped:
        async with (
            simulator(project) as sim,
            # A slow budget: creates wait for tokens (inside the reconciler's shield,
            # which lets a create already under way finish), so some are still queued
            # when the loss is found. The gate refuses them.
            running_node(kube_api, sim, settings, requests_per_minute=20) as node,
            anyio.create_task_group() as watching,
        ):

            async def notice_the_end() -> None:
                while node.node.tenure.ended is None:
                    await anyio.sleep(0.01)
                found_out.append(time.monotonic())

            watching.start_soon(notice_the_end)
            # Pods arrive while another holder takes the Lease (no real replica would
            # take it from a live one: here the holder only learns at its next renewal).
            await admin.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                deployment("racing", node.name, 6),
            )
            current = await admin.get(lease_path(node.name))
            taken = await claim(
                admin,
                node.name,
                "another-replica/run1",
                current,
                duration_seconds=40,
                request_timeout=5,
            )
            took_at = time.monotonic()  # the simulator's request log uses this clock
            with anyio.fail_after(10):
                await anyio.sleep_forever()  # the node's LeaseLost ends this block
    assert stopped.value.subgroup(LeaseLost) is not None, stopped.value
    (ended_at,) = found_out
    assert ended_at - took_at < settings.lease_renew_interval + 2.0
    assert mutations(sim, ended_at) == []
    lease = await admin.get(lease_path(settings.name))
    assert lease["spec"]["holderIdentity"] == "another-replica/run1"
    assert lease["metadata"]["resourceVersion"] == taken.lease["metadata"]["resourceVersion"]
    await admin.delete(f"/api/v1/nodes/{settings.name}")
