"""Several ``salad-vk run`` processes share the nodes: balance, failover, handoff,
rolling restart, a partition, and one API key's budget — on a real control plane with
a 40 s node-monitor grace, watched from the API server the whole time."""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from nodes.kube import KubeClient, KubeNotFound
from nodes.saladcloud.simulator import Simulator
from tests.controlplane.cluster import ControlPlane
from tests.manifests import workload
from tests.nodes.harness import eventually, phase, pods
from tests.tcp_proxy import tcp_proxy

from .harness import ORG, simulator
from .proxies import RecordingProxy
from .replicas import (
    ClusterWatch,
    Replica,
    deleted_groups,
    groups_by_owner,
    holders,
    kubeconfig_through,
    projects_file,
    replica,
)

pytestmark = pytest.mark.anyio

KEY = "sk-ha-one-key-for-six-projects-4f1e9b"
SIX = 6


def six_nodes(prefix: str) -> dict[str, str]:
    return {f"{prefix}-{i}": f"{prefix}-p{i}" for i in range(SIX)}


async def balanced(kube: KubeClient, nodes: Sequence[str], replicas: Sequence[Replica]) -> bool:
    held = collections.Counter((await holders(kube, nodes)).values())
    share = len(nodes) // len(replicas)
    return all(held[r.identity] == share for r in replicas) and all(
        [await r.ready() for r in replicas]
    )


async def all_running(
    kube: KubeClient, namespace: str, sim: Simulator, projects: Sequence[str], count: int
) -> bool:
    found = [p for p in await pods(kube, namespace) if not p["metadata"].get("deletionTimestamp")]
    if len(found) != count or any(phase(p) != "Running" for p in found):
        return False
    owners = groups_by_owner(sim, projects)
    return {p["metadata"]["uid"] for p in found} == set(owners)


async def forget_nodes(kube: KubeClient, nodes: Sequence[str]) -> None:
    for name in nodes:
        try:
            await kube.delete(f"/api/v1/nodes/{name}")
        except KubeNotFound:
            continue


async def test_three_replicas_balance_and_a_kill_9_mid_scale_up_costs_no_readiness(
    ha_plane: ControlPlane, ha_kube: KubeClient, ha_namespace: str, tmp_path: Path
) -> None:
    kube, namespace = ha_kube, ha_namespace
    nodes = six_nodes(f"k{uuid.uuid4().hex[:5]}")
    projects = list(nodes.values())
    # One API key, SaladCloud's real limit: the scale-up is paced, so the kill lands in it.
    async with simulator(projects, **{"api-key": [KEY], "rate-limit": 240}) as sim:
        config = projects_file(
            tmp_path / "projects.yaml", sim.url, nodes, dict.fromkeys(projects, KEY)
        )
        watch = ClusterWatch(kube, list(nodes))
        async with AsyncExitStack() as stack:
            replicas = [
                await stack.enter_async_context(
                    replica(f"ha-{x}", config, ha_plane.kubeconfig, namespace, tmp_path)
                )
                for x in "abc"
            ]
            group = await stack.enter_async_context(anyio.create_task_group())
            group.start_soon(watch.run)

            await eventually(lambda: balanced(kube, list(nodes), replicas), 90, "2 nodes each")

            for index, name in enumerate(nodes):
                await kube.post(
                    f"/apis/apps/v1/namespaces/{namespace}/deployments",
                    workload(f"w{index}", 5, node=name),
                )
            victim = replicas[1]
            held = await holders(kube, list(nodes))
            its_nodes = [n for n, h in held.items() if h == victim.identity]
            its_projects = [nodes[n] for n in its_nodes]

            async def under_way() -> bool:
                return (
                    sum(len(sim.groups(ORG, p, include_deleted=False)) for p in its_projects) >= 2
                )

            await eventually(under_way, 60, "the scale-up under way on the victim's nodes")
            victim.kill()
            killed = time.monotonic()
            await victim.process.wait()
            created = sum(len(sim.groups(ORG, p, include_deleted=False)) for p in its_projects)
            assert created < 5 * len(its_nodes), "the kill must land in the middle of the scale-up"

            async def taken_over() -> bool:
                now = await holders(kube, its_nodes)
                return all(h not in ("", victim.identity) for h in now.values())

            await eventually(taken_over, 45, "the killed replica's nodes taken over")
            failover = time.monotonic() - killed
            survivors = [r for r in replicas if r is not victim]
            takeovers = sum(
                [await r.metric("salad_vk_node_takeovers_total", kind="silent") for r in survivors]
            )
            assert takeovers == len(its_nodes)

            await eventually(
                lambda: all_running(kube, namespace, sim, projects, 5 * SIX), 120, "30 pods Running"
            )
            group.cancel_scope.cancel()

        print(f"failover {failover:.1f}s, largest lease gap {watch.largest_gap():.1f}s")
        assert watch.not_ready == []
        assert watch.largest_gap() < 30
        assert all(len(names) == 1 for names in groups_by_owner(sim, projects).values())
        assert deleted_groups(sim, projects) == []
    await forget_nodes(kube, list(nodes))


async def test_sigterm_hands_off_within_seconds_and_a_rolling_restart_costs_nothing(
    ha_plane: ControlPlane, ha_kube: KubeClient, ha_namespace: str, tmp_path: Path
) -> None:
    kube, namespace = ha_kube, ha_namespace
    nodes = six_nodes(f"r{uuid.uuid4().hex[:5]}")
    projects = list(nodes.values())
    keys = {p: f"sk-ha-{p}-0a1b2c3d4e" for p in projects}
    async with simulator(projects, **{"api-key": list(keys.values())}) as sim:
        config = projects_file(tmp_path / "projects.yaml", sim.url, nodes, keys)
        watch = ClusterWatch(kube, list(nodes))
        async with AsyncExitStack() as stack, anyio.create_task_group() as group:

            async def start(identity: str) -> Replica:
                return await stack.enter_async_context(
                    replica(identity, config, ha_plane.kubeconfig, namespace, tmp_path)
                )

            replicas = [await start(f"ha-{x}-1") for x in "abc"]
            group.start_soon(watch.run)
            await eventually(lambda: balanced(kube, list(nodes), replicas), 90, "2 nodes each")
            for index, name in enumerate(nodes):
                await kube.post(
                    f"/apis/apps/v1/namespaces/{namespace}/deployments",
                    workload(f"w{index}", 2, node=name),
                )
            await eventually(
                lambda: all_running(kube, namespace, sim, projects, 2 * SIX), 90, "12 pods Running"
            )

            # SIGTERM: every node it held is renewed by another replica within 5 s.
            leaving = replicas[0]
            held = await holders(kube, list(nodes))
            its_nodes = [n for n, h in held.items() if h == leaving.identity]
            signalled = time.monotonic()
            async with anyio.create_task_group() as stopping:
                stopping.start_soon(leaving.terminate)
                taken: dict[str, float] = {}
                with anyio.fail_after(30):
                    while len(taken) < len(its_nodes):
                        now = await holders(kube, its_nodes)
                        for name, holder in now.items():
                            if holder not in ("", leaving.identity) and name not in taken:
                                taken[name] = time.monotonic() - signalled
                        await anyio.sleep(0.1)
            assert leaving.process.returncode == 0
            print(f"SIGTERM: renewed by another after {sorted(taken.values())} s")
            assert max(taken.values()) < 5.0

            # A rolling restart, one at a time, as the Deployment's RollingUpdate does
            # it (maxSurge 1, maxUnavailable 0): the new pod is Ready, then the old one
            # gets SIGTERM.
            current = replicas[1:]
            current.append(await start("ha-a-2"))
            await eventually(lambda: balanced(kube, list(nodes), current), 60, "a-2 joined")
            for old in list(current[:2]):
                new = await start(old.identity.replace("-1", "-2"))
                await eventually(new.ready, 60, f"{new.identity} ready")
                assert await old.terminate() == 0
                current = [r for r in current if r is not old] + [new]
                now_serving = list(current)
                await eventually(
                    lambda: balanced(kube, list(nodes), now_serving),  # noqa: B023 - awaited here
                    60,
                    f"{new.identity} joined",
                )
            await eventually(
                lambda: all_running(kube, namespace, sim, projects, 2 * SIX), 60, "12 pods Running"
            )
            group.cancel_scope.cancel()

        assert watch.not_ready == []
        assert deleted_groups(sim, projects) == []
        assert all(len(names) == 1 for names in groups_by_owner(sim, projects).values())
        print(f"rolling restart: largest lease gap {watch.largest_gap():.1f}s")
    await forget_nodes(kube, list(nodes))


MUTATIONS = ("POST", "PUT", "PATCH", "DELETE")


async def test_a_replica_cut_off_from_the_api_server_stops_mutating_before_anyone_takes_over(
    ha_plane: ControlPlane, ha_kube: KubeClient, ha_namespace: str, tmp_path: Path
) -> None:
    kube, namespace = ha_kube, ha_namespace
    nodes = six_nodes(f"c{uuid.uuid4().hex[:5]}")
    projects = list(nodes.values())
    keys = {p: f"sk-ha-{p}-9f8e7d6c5b" for p in projects}
    api_port = int(ha_plane.server.rsplit(":", 1)[1])
    async with (
        simulator(projects, **{"api-key": list(keys.values())}) as sim,
        tcp_proxy("127.0.0.1", api_port) as cut,
        AsyncExitStack() as stack,
    ):
        proxies = {
            x: await stack.enter_async_context(RecordingProxy(sim.url).running()) for x in "abc"
        }
        # A slow budget (18 requests a minute per project): creates trickle, so the
        # cut-off replica still has work queued when its deadline comes.
        configs = {
            x: projects_file(
                tmp_path / x / "projects.yaml", proxies[x].url, nodes, keys, apiRateLimit=20
            )
            for x in "abc"
        }
        through_proxy = kubeconfig_through(
            ha_plane.kubeconfig, cut.port, tmp_path / "cut.kubeconfig"
        )
        kubeconfigs = {"a": through_proxy, "b": ha_plane.kubeconfig, "c": ha_plane.kubeconfig}
        replicas = {
            x: await stack.enter_async_context(
                replica(f"ha-{x}", configs[x], kubeconfigs[x], namespace, tmp_path)
            )
            for x in "abc"
        }
        watch = ClusterWatch(kube, list(nodes))
        group = await stack.enter_async_context(anyio.create_task_group())
        group.start_soon(watch.run)
        await eventually(lambda: balanced(kube, list(nodes), list(replicas.values())), 90, "2 each")

        held = await holders(kube, list(nodes))
        its_nodes = [n for n, h in held.items() if h == "ha-a"]
        for index, name in enumerate(its_nodes):
            await kube.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                workload(f"w{index}", 8, node=name),
            )

        async def seen_and_started() -> bool:
            bound = [p for p in await pods(kube, namespace) if p["spec"].get("nodeName")]
            created = sum(len(sim.groups(ORG, nodes[n], include_deleted=False)) for n in its_nodes)
            return len(bound) == 8 * len(its_nodes) and created >= 1

        await eventually(seen_and_started, 60, "the cut-off replica creating groups")
        before_cut = await holders(kube, list(nodes))
        cut.cut()
        cut_at = time.time()
        history_at_cut = {name: len(seen) for name, seen in watch.holders.items()}

        async def taken_over() -> bool:
            now = await holders(kube, its_nodes)
            return all(h in ("ha-b", "ha-c") for h in now.values())

        await eventually(taken_over, 60, "its nodes taken over")
        await eventually(
            lambda: all_running(kube, namespace, sim, projects, 8 * len(its_nodes)),
            120,
            "every pod Running",
        )

        # Nothing the cut-off replica sent for a node arrived after the new owner's
        # first request for it. (Before the cut, b or c may have served the node for a
        # moment: the first replica up takes every node, then hands some off.)
        for name in its_nodes:
            path = f"/organizations/{ORG}/projects/{nodes[name]}/"
            old = [r.at for r in proxies["a"].requests if r.method in MUTATIONS and path in r.path]
            first_new = min(
                r.at for x in "bc" for r in proxies[x].requests if path in r.path and r.at > cut_at
            )
            assert old, "the cut-off replica kept working on SaladCloud after the cut"
            assert max(old) < first_new, (name, max(old) - cut_at, first_new - cut_at)
        after_cut = [r for r in proxies["a"].requests if r.method in MUTATIONS and r.at > cut_at]
        print(
            f"cut-off replica: {len(after_cut)} mutations after the cut, last at "
            f"+{max((r.at - cut_at for r in after_cut), default=0):.1f}s"
        )

        # Healed, it rejoins as a member and gets its share back, by handoff.
        cut.heal()
        await eventually(
            lambda: balanced(kube, list(nodes), list(replicas.values())), 60, "rejoined"
        )
        # The same members compute the same assignment: everything is back where it
        # was, and stays there.
        settled = await holders(kube, list(nodes))
        assert settled == before_cut
        await anyio.sleep(5)
        assert await holders(kube, list(nodes)) == settled, "no fight after rejoining"
        group.cancel_scope.cancel()

    assert watch.not_ready == []
    assert deleted_groups(sim, projects) == []
    assert all(len(names) == 1 for names in groups_by_owner(sim, projects).values())
    # Since the cut, a node moved at most once per membership change (the replica
    # lost, the replica back): each move is a release ('' or a takeover) and a holder.
    since_cut = {n: seen[history_at_cut[n] :] for n, seen in watch.holders.items()}
    assert all(len(seen) <= 4 for seen in since_cut.values()), since_cut
    await forget_nodes(kube, list(nodes))


def most_in_any_window(times: Sequence[float], window: float = 60.0) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_six_nodes_on_one_key_over_three_replicas_stay_within_its_limit_in_a_burst(
    ha_plane: ControlPlane, ha_kube: KubeClient, ha_namespace: str, tmp_path: Path
) -> None:
    kube, namespace = ha_kube, ha_namespace
    nodes = six_nodes(f"b{uuid.uuid4().hex[:5]}")
    projects = list(nodes.values())
    burst = 200
    async with simulator(projects, **{"api-key": [KEY], "rate-limit": 240}) as sim:
        config = projects_file(
            tmp_path / "projects.yaml", sim.url, nodes, dict.fromkeys(projects, KEY)
        )
        async with AsyncExitStack() as stack:
            replicas = [
                await stack.enter_async_context(
                    replica(f"ha-{x}", config, ha_plane.kubeconfig, namespace, tmp_path)
                )
                for x in "abc"
            ]
            await eventually(lambda: balanced(kube, list(nodes), replicas), 90, "2 nodes each")
            started = time.monotonic()  # the simulator's request log uses this clock
            per_node = burst // SIX
            for index, name in enumerate(nodes):
                count = per_node + (1 if index < burst % SIX else 0)
                await kube.post(
                    f"/apis/apps/v1/namespaces/{namespace}/deployments",
                    workload(f"w{index}", count, node=name),
                )

            async def all_created() -> bool:
                return (
                    sum(len(sim.groups(ORG, p, include_deleted=False)) for p in projects) == burst
                )

            await eventually(all_created, 240, f"{burst} groups created")
            await anyio.sleep(20)  # and a while of polling at the full rate after it
    on_the_key = [r.wall for r in sim.requests(KEY) if r.wall >= started]
    busiest = most_in_any_window(on_the_key)
    print(f"{len(on_the_key)} requests on the key; busiest 60 s window {busiest}")
    assert len(on_the_key) > burst
    assert busiest <= 240
    assert [r for r in sim.requests(KEY) if r.status == 429] == []
    await forget_nodes(kube, list(nodes))
