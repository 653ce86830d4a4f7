"""A replica whose membership lapsed refuses to act on its nodes until it is a member
again and has proven each node its own anew: a lapse pauses the nodes, it does not
restart them."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeNotFound
from nodes.node import VirtualNode
from tests.nodes.harness import eventually

from .harness import ConfigMapDir, projects_yaml, running_supervisor, simulator

pytestmark = pytest.mark.anyio


async def test_nodes_refuse_while_membership_lapsed_and_resume_when_their_lease_is_renewed(
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
            slot = supervisor.slots[name]
            assert isinstance(slot.node, VirtualNode)
            tenure = slot.node.tenure
            # As when a membership renewal is answered just after its deadline and the
            # next one is in time: valid again, in a new epoch, before placement looked.
            member = supervisor.member
            member._epoch += 1
            member._epoch_began = time.monotonic()
            assert member.valid(time.monotonic())
            assert tenure.membership_lapsed and not tenure.owned

            async def owned_again() -> bool:
                return tenure.owned

            supervisor._replan()  # placement sees the new epoch: renew every Lease now
            with anyio.fail_after(5):  # well before the 10 s renew interval
                await eventually(owned_again, 5, "the node's Lease renewed in the new epoch")
            assert supervisor.slots[name] is slot and slot.restarts == 0
            assert await running.lease_holder(name) == supervisor.holder
        with contextlib.suppress(KubeNotFound):
            await running.kube.delete(f"/api/v1/nodes/{name}")
