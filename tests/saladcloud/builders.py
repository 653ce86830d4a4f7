"""Small builders shared by the SaladCloud tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from nodes.metrics import NodeMetrics
from nodes.saladcloud import models
from nodes.saladcloud.client import RetryPolicy, SaladClient
from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.simulator import Simulator, SimulatorOptions, lifecycle, running_simulator
from nodes.saladcloud.transport import saladcloud_http_client

ORG = "acme"
PROJECT = "demo"
KEY = "sk-live-3f9a1c7e5b2d4a6f8e0c1b3d5f7a9c2e"
"""An API key distinctive enough that finding it anywhere is a leak, not a coincidence."""

DEPLOYED = 1.2 * (lifecycle.PREPARE + lifecycle.ALLOCATE + lifecycle.DOWNLOAD + lifecycle.CREATE)
"""Simulated seconds by which a new group surely runs: every duration is base * (0.8..1.2)."""


def options(**values: Any) -> SimulatorOptions:
    """Simulator options on a free loopback port, with ``acme/demo`` and ``KEY``."""
    values.setdefault("listen", "127.0.0.1:0")
    values.setdefault("project", [f"{ORG}/{PROJECT}"])
    values.setdefault("api-key", [KEY])
    return SimulatorOptions.model_validate(values)


def body(name: str = "pod-1", **changes: Any) -> dict[str, Any]:
    """A small create body as raw JSON, for requests the typed client would not send."""
    document: dict[str, Any] = {
        "name": name,
        "container": {"image": "nginx:1.27", "resources": {"cpu": 1, "memory": 1024}},
        "autostart_policy": True,
        "replicas": 1,
        "restart_policy": "always",
    }
    document.update(changes)
    return document


def prototype(
    name: str, *, image: str = "nginx:1.27", **fields: Any
) -> models.ContainerGroupPrototype:
    container = fields.pop("container", None) or models.CreateContainer(
        image=image, resources=models.CreateResources(cpu=1, memory=1024)
    )
    fields.setdefault("restart_policy", "always")
    return models.ContainerGroupPrototype(name=name, container=container, **fields)


def client(
    http: httpx.AsyncClient,
    base_url: str,
    budget: KeyBudget,
    *,
    node: str = "node-a",
    key: str = KEY,
    organization: str = ORG,
    project: str = PROJECT,
    metrics: NodeMetrics | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = 5.0,
) -> SaladClient:
    return SaladClient(
        http,
        base_url=base_url,
        api_key=SecretStr(key),
        organization=organization,
        project=project,
        limiter=budget.share(node),
        node=node,
        metrics=metrics,
        retry=retry,
        timeout=timeout,
    )


def group_json(name: str = "pod-1", **changes: Any) -> dict[str, Any]:
    """A ``ContainerGroup`` response body as the API documents it."""
    document: dict[str, Any] = {
        "id": "0b5c9a7e-8f0e-4d33-9c1e-8a4f7f2d1e55",
        "name": name,
        "display_name": name,
        "organization_name": ORG,
        "project_name": PROJECT,
        "container": {
            "image": "nginx:1.27",
            "resources": {"cpu": 1, "memory": 1024, "gpu_classes": []},
            "command": None,
        },
        "autostart_policy": True,
        "restart_policy": "always",
        "replicas": 1,
        "priority": "high",
        "country_codes": [],
        "current_state": {
            "status": "running",
            "start_time": "2026-04-03T12:00:00Z",
            "finish_time": "2026-04-03T12:00:00Z",
            "instance_status_counts": {
                "allocating_count": 0,
                "creating_count": 0,
                "running_count": 1,
                "stopping_count": 0,
            },
        },
        "pending_change": False,
        "version": 1,
        "create_time": "2026-04-03T12:00:00Z",
        "update_time": "2026-04-03T12:00:00Z",
        "scaling-actions": [],
        "scheduled-scaling-enabled": False,
    }
    document.update(changes)
    return document


class Wall:
    """A wall clock for a simulator that moves only when told (rate windows, sim time)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Connected:
    """A simulator in this process and a real client talking to it over HTTP."""

    sim: Simulator
    http: httpx.AsyncClient
    budget: KeyBudget
    salad: SaladClient

    async def raw(
        self, method: str, path: str, *, key: str | None = KEY, **kwargs: Any
    ) -> httpx.Response:
        """One request without the client's typing and retries (path under /api/public)."""
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Salad-Api-Key"] = key
        return await self.http.request(method, self.sim.url + path, headers=headers, **kwargs)

    def client(self, **kwargs: Any) -> SaladClient:
        kwargs.setdefault("retry", QUICK_RETRY)
        return client(self.http, self.sim.url, kwargs.pop("budget", self.budget), **kwargs)


QUICK_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
GROUPS_PATH = f"/organizations/{ORG}/projects/{PROJECT}/containers"


@asynccontextmanager
async def connected(
    flags: Mapping[str, Any] | None = None,
    *,
    wall: Callable[[], float] | None = None,
    epoch: datetime | None = None,
    **values: Any,
) -> AsyncIterator[Connected]:
    """Options (``flags`` by flag name, or ``values``) served in-process.

    Simulated time and the rate window stand still unless ``wall`` moves; the key's
    limit is out of the way unless the test sets ``rate-limit``.
    """
    values = {**(flags or {}), **values}
    values.setdefault("rate-limit", 100_000)
    monotonic = wall if wall is not None else Wall()
    async with (
        running_simulator(options(**values), monotonic=monotonic, epoch=epoch) as sim,
        saladcloud_http_client(httpx.Limits(), httpx.Timeout(30.0), environ={}) as http,
    ):
        budget = KeyBudget(100_000)
        salad = client(http, sim.url, budget, retry=QUICK_RETRY)
        yield Connected(sim, http, budget, salad)
