"""A replica whose membership lapsed stops the nodes it can no longer prove it owns,
and claims them afresh once it is a member again."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeNotFound
from nodes.node import VirtualNode
from tests.nodes.harness import eventually

from .harness import ConfigMapDir, projects_yaml, running_supervisor, simulator

pytestmark = pytest.mark.anyio


async def test_nodes_of_a_lapsed_membership_epoch_are_stopped_and_claimed_afresh(
    kube_api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    name = f"f{uuid.uuid4().hex[:6]}"
    async with simulator([f"{name}-p"]) as sim:
        config = ConfigMapDir(tmp_path / "config")
        config.write(projects_yaml(sim, tmp_path / "keys", {name: f"{name}-p"}))
        async with running_supervisor(
            kube_api, config.path, identity="replica-f", lease_namespace=namespace
        ) as running:
            supervisor = running.supervisor

            async def serving() -> bool:
                return supervisor.readiness().get(name, False)

            await eventually(serving, 30, "the node serving")
            before = supervisor.slots[name]
            assert isinstance(before.node, VirtualNode)
            tenure = before.node.tenure
            # As when a membership renewal is answered just after its deadline and the
            # next one is in time: valid again, in a new epoch, between two looks.
            supervisor.member._epoch += 1
            assert supervisor.member.valid(supervisor.member.valid_until - 1)
            assert tenure.membership_lapsed and not tenure.owned

            async def claimed_afresh() -> bool:
                slot = supervisor.slots.get(name)
                return slot is not None and slot is not before and slot.ready

            supervisor._replan()
            await eventually(claimed_afresh, 30, "the node stopped and claimed afresh")
            assert running.sample("salad_vk_fencing_events_total", {"reason": "membership"}) == 1
            assert await running.lease_holder(name) == supervisor.holder
        with contextlib.suppress(KubeNotFound):
            await running.kube.delete(f"/api/v1/nodes/{name}")
