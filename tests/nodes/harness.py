"""A virtual node wired to the real control plane and an in-process simulator."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx
import pytest
from kubernetes_asyncio.client.api_client import ApiClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from nodes.cluster import read_cluster_facts
from nodes.kube import KubeClient, KubeNotFound
from nodes.metrics import NodeMetrics
from nodes.node import VirtualNode
from nodes.saladcloud.client import SaladClient
from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.retry import RetryPolicy
from nodes.saladcloud.simulator import Simulator, SimulatorOptions, running_simulator
from nodes.settings import NodeSettings
from nodes.tenure import Tenure
from tests.manifests import workload

ORG = "acme"
KEY = "sk-node-test-7c1e9a3f5b2d4e6a8c0f1b3d5e7a9c2f"
# SaladCloud time runs this much faster than the wall clock in node tests: a group
# that takes ~2 simulated minutes to come up is running in well under a second.
TIME_SCALE = 600.0


@asynccontextmanager
async def simulator(*projects: str, **overrides: Any) -> AsyncIterator[Simulator]:
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "project": [f"{ORG}/{project}" for project in projects],
        "api-key": [KEY],
        "rate-limit": 6000,
        "time-scale": TIME_SCALE,
        **overrides,
    }
    async with running_simulator(SimulatorOptions.model_validate(values)) as sim:
        yield sim


@dataclass
class RunningNode:
    node: VirtualNode
    settings: NodeSettings
    sim: Simulator
    kube: KubeClient
    registry: CollectorRegistry

    @property
    def name(self) -> str:
        return self.settings.name

    def groups(self, *, deleted: bool = False) -> list[Any]:
        return [
            g
            for g in self.sim.groups(ORG, self.settings.project, include_deleted=True)
            if g.deleted == deleted
        ]


def node_settings(project: str, **changes: Any) -> NodeSettings:
    settings = NodeSettings(
        name=f"salad-{project}",
        organization=ORG,
        project=project,
        poll_interval=0.5,
        resync_interval=60.0,
        orphan_min_age=3600.0,
        delete_confirm_timeout=30.0,
    )
    return replace(settings, **changes)


@asynccontextmanager
async def running_node(
    kube_api: ApiClient,
    sim: Simulator,
    settings: NodeSettings,
    *,
    requests_per_minute: int = 6000,
    keep_node: bool = False,
    budget: KeyBudget | None = None,
) -> AsyncIterator[RunningNode]:
    """Serve ``settings`` until the block ends; then stop it and (unless ``keep_node``,
    as when a test restarts it) delete its Node. Nodes given one ``budget`` share a key."""
    registry = CollectorRegistry()
    metrics = NodeMetrics(registry)
    budget = budget if budget is not None else KeyBudget(requests_per_minute)
    kube = KubeClient(kube_api, node="test")
    settings = replace(settings, cluster=await read_cluster_facts(kube))
    # The node's gate guards its SaladCloud mutations too, as in the supervisor.
    tenure = Tenure(settings.name, node_deadline=settings.node_deadline)
    async with httpx.AsyncClient() as http:
        salad = SaladClient(
            http,
            base_url=sim.url,
            api_key=SecretStr(KEY),
            organization=settings.organization,
            project=settings.project,
            limiter=budget.share(settings.name),
            node=settings.name,
            metrics=metrics,
            retry=RetryPolicy(base_delay=0.05, max_delay=0.5),
            guard=tenure.guard_salad,
        )
        node = VirtualNode(settings, kube_api=kube_api, salad=salad, metrics=metrics, tenure=tenure)
        async with anyio.create_task_group() as group:
            await group.start(node.run)
            try:
                yield RunningNode(node, settings, sim, kube, registry)
            finally:
                group.cancel_scope.cancel()
    if keep_node:
        return
    with suppress(KubeNotFound):
        await kube.delete(f"/api/v1/nodes/{settings.name}")


def unique_project() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def deployment(
    name: str, node: str, replicas: int, *, container: dict[str, Any] | None = None
) -> dict[str, Any]:
    return workload(name, replicas, node=node, container=container)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    with anyio.move_on_after(timeout) as scope:
        while not await check():
            await anyio.sleep(0.2)
    if scope.cancelled_caught:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


async def pods(kube: KubeClient, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    params = {"labelSelector": selector} if selector else {}
    found = await kube.get(f"/api/v1/namespaces/{namespace}/pods", params)
    return list(found.get("items") or [])


def phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase"))


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


async def events(kube: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    found = await kube.get(
        f"/api/v1/namespaces/{namespace}/events",
        {"fieldSelector": f"involvedObject.name={name}"},
    )
    return list(found.get("items") or [])


async def plant_group(sim: Simulator, project: str, name: str, env: dict[str, str]) -> None:
    """Create a container group directly, as someone other than the node would."""
    body = {
        "name": name,
        "container": {
            "image": "nginx:1.27",
            "resources": {"cpu": 1, "memory": 1024},
            **({"environment_variables": env} if env else {}),
        },
        "autostart_policy": True,
        "replicas": 1,
        "restart_policy": "always",
    }
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sim.url}/organizations/{ORG}/projects/{project}/containers",
            json=body,
            headers={"Salad-Api-Key": KEY},
        )
        response.raise_for_status()
