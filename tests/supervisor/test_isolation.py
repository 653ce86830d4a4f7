"""One node's trouble stays its own: a refused key, a crash loop, the others' leases."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskStatus
from kubernetes_asyncio.client.api_client import ApiClient

from config import NodeConfig
from nodes.settings import UNAVAILABLE_TAINT_KEY
from supervisor.slot import Runnable
from supervisor.supervisor import NodeBuilder
from tests.nodes.harness import eventually

from .harness import ConfigMapDir, key_of, projects_yaml, running_supervisor, simulator

pytestmark = pytest.mark.anyio

OBSERVE_SECONDS = 32.0
"""Long enough for three renewals at the default 10 s interval."""


class CrashingNode:
    """A node whose task fails a moment after it starts, every time."""

    ready = False

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await anyio.sleep(0.05)
        raise RuntimeError("this node always fails")


async def test_a_refused_key_and_a_crash_loop_leave_the_other_nodes_untouched(
    kube_api: ApiClient, tmp_path: Path
) -> None:
    prefix = f"i{uuid.uuid4().hex[:6]}"
    healthy, refused, crashing = f"{prefix}-ok", f"{prefix}-403", f"{prefix}-crash"
    nodes = {healthy: f"{prefix}-p1", refused: f"{prefix}-p2", crashing: f"{prefix}-p3"}

    def wrap(node: NodeConfig, default: NodeBuilder) -> Runnable:
        return CrashingNode() if node.name == crashing else default(node)

    async with simulator(list(nodes.values())) as sim:
        config = ConfigMapDir(tmp_path / "config")
        config.write(projects_yaml(sim, tmp_path / "keys", nodes))
        async with running_supervisor(kube_api, config.path, wrap_node=wrap) as running:
            kube = running.kube

            async def registered() -> bool:
                return all(running.supervisor.readiness()[n] for n in (healthy, refused))

            await eventually(registered, 30, "the two working nodes Ready")
            sim.revoke_key(key_of(nodes[refused]))

            renewals: dict[str, list[datetime]] = {healthy: [], refused: []}

            async def record_renewals() -> None:
                while True:
                    for name, seen in renewals.items():
                        lease = await kube.get(
                            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + name
                        )
                        at = datetime.fromisoformat(
                            lease["spec"]["renewTime"].replace("Z", "+00:00")
                        )
                        if not seen or seen[-1] != at:
                            seen.append(at)
                    await anyio.sleep(0.5)

            async with anyio.create_task_group() as observing:
                observing.start_soon(record_renewals)
                await anyio.sleep(OBSERVE_SECONDS)
                observing.cancel_scope.cancel()

            for name, seen in renewals.items():
                gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(seen)]
                assert len(seen) >= 3, (name, seen)
                assert max(gaps) < 15, (name, gaps)

            restarts = running.sample("salad_vk_node_restarts_total", {"node": crashing})
            assert restarts >= 3
            assert running.supervisor.slots[healthy].restarts == 0
            assert running.supervisor.slots[refused].restarts == 0

            def conditions(node: dict[str, object]) -> dict[str, tuple[str, str]]:
                status = node["status"]
                assert isinstance(status, dict)
                return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}

            def taints(node: dict[str, object]) -> set[str]:
                spec = node["spec"]
                assert isinstance(spec, dict)
                return {t["key"] for t in spec.get("taints") or []}

            bad = await kube.get(f"/api/v1/nodes/{refused}")
            assert conditions(bad)["Ready"] == ("True", "KubeletReady")
            assert conditions(bad)["SaladCloudReachable"] == ("False", "APIKeyRejected")
            assert UNAVAILABLE_TAINT_KEY in taints(bad)
            good = await kube.get(f"/api/v1/nodes/{healthy}")
            assert conditions(good)["SaladCloudReachable"][0] == "True"
            assert UNAVAILABLE_TAINT_KEY not in taints(good)

            # The key is accepted again: the node says so and takes pods again.
            sim.accept_key(key_of(nodes[refused]))

            async def recovered() -> bool:
                node = await kube.get(f"/api/v1/nodes/{refused}")
                return conditions(node)["SaladCloudReachable"][
                    0
                ] == "True" and UNAVAILABLE_TAINT_KEY not in taints(node)

            await eventually(recovered, 15, "the node recovered once the key works again")
            for name in nodes:
                if name != crashing:
                    await kube.delete(f"/api/v1/nodes/{name}")
