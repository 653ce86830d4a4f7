"""/metrics, /healthz and /readyz on one port, as Prometheus and the kubelet read them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import anyio
import httpx
import pytest
from kubernetes_asyncio.client.api_client import ApiClient
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from nodes.kube import KubeNotFound
from supervisor.endpoints import Endpoints, LoopLag
from tests.nodes.harness import deployment, eventually, phase, pods

from .harness import ConfigMapDir, projects_yaml, running_supervisor, simulator

pytestmark = pytest.mark.anyio

FAMILIES = {
    # the process
    "salad_vk_nodes_configured": "gauge",
    "salad_vk_nodes_running": "gauge",
    "salad_vk_node_restarts": "counter",
    "salad_vk_config_reloads": "counter",
    "salad_vk_event_loop_lag_seconds": "histogram",
    # each node
    "salad_vk_lease_renewal_age_seconds": "gauge",
    "salad_vk_lease_renewal_duration_seconds": "histogram",
    "salad_vk_pods": "gauge",
    "salad_vk_saladcloud_requests": "counter",
    "salad_vk_saladcloud_rate_limited": "counter",
    "salad_vk_ratelimiter_wait_seconds": "histogram",
    "salad_vk_reconcile_duration_seconds": "histogram",
    "salad_vk_kubernetes_requests": "counter",
}


async def test_metrics_parse_and_health_endpoints_answer(
    kube_api: ApiClient, namespace: str, tmp_path: Path
) -> None:
    name = f"m{uuid.uuid4().hex[:6]}"
    async with simulator([f"{name}-p"]) as sim:
        config = ConfigMapDir(tmp_path / "config")
        config.write(projects_yaml(sim, tmp_path / "keys", {name: f"{name}-p"}))
        async with running_supervisor(kube_api, config.path) as running:
            await running.kube.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("m", name, 2)
            )

            async def running_pods() -> bool:
                found = await pods(running.kube, namespace, "app=m")
                return len(found) == 2 and all(phase(p) == "Running" for p in found)

            await eventually(running_pods, 30, "2 pods Running")
            async with httpx.AsyncClient(base_url=running.metrics_url) as http:
                assert (await http.get("/healthz")).status_code == 200
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                metrics = await http.get("/metrics")
            assert metrics.headers["content-type"].startswith("text/plain")
            families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
            for family, kind in FAMILIES.items():
                assert family in families, f"{family} missing from /metrics"
                assert families[family].type == kind, family

            def value(family: str, **labels: str) -> float:
                return sum(
                    s.value
                    for s in families[family].samples
                    if all(s.labels.get(k) == v for k, v in labels.items())
                    and not s.name.endswith(("_created", "_bucket"))
                )

            assert value("salad_vk_nodes_configured") == 1
            assert value("salad_vk_nodes_running") == 1
            assert value("salad_vk_pods", node=name, phase="Running") == 2
            assert (
                value("salad_vk_saladcloud_requests", node=name, operation="create_container_group")
                >= 2
            )
            assert value("salad_vk_lease_renewal_age_seconds", node=name) < 15
            await running.kube.delete(f"/api/v1/nodes/{name}")


async def test_readyz_fails_while_a_configured_node_is_not_serving(
    tmp_path: Path, kube_api: ApiClient
) -> None:
    name = f"n{uuid.uuid4().hex[:6]}"
    async with simulator([f"{name}-p"]) as sim:
        config = ConfigMapDir(tmp_path / "config")
        config.write(projects_yaml(sim, tmp_path / "keys", {name: f"{name}-p"}))
        async with running_supervisor(kube_api, config.path) as running:
            running.supervisor.slots[name].stop()
            await running.supervisor.slots[name].stopped.wait()
            async with httpx.AsyncClient(base_url=running.metrics_url) as http:
                answer = await http.get("/readyz")
            assert answer.status_code == 503
            assert name in answer.text
            with suppress(KubeNotFound):
                await running.kube.delete(f"/api/v1/nodes/{name}")


class _Blocking(Collector):
    """A collector that cannot finish until the event loop has run again."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Iterator[Metric]:
        self.entered.set()
        if not self.release.wait(timeout=30):
            raise AssertionError("the loop never got to release the collector")
        yield GaugeMetricFamily("blocking_probe", "released by the loop", value=1)


async def test_metrics_are_rendered_off_the_event_loop() -> None:
    registry = CollectorRegistry()
    blocking = _Blocking()
    registry.register(blocking)
    endpoints = Endpoints(registry, LoopLag(), dict)
    async with anyio.create_task_group() as group:
        port = await group.start(endpoints.serve, "127.0.0.1:0")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def release_from_the_loop() -> None:
                # Runs only if rendering left the loop free: a render on the loop
                # thread would wait for this forever (and fail after 30 s).
                while not blocking.entered.is_set():
                    await anyio.sleep(0.01)
                blocking.release.set()

            group.start_soon(release_from_the_loop)
            answer = await http.get("/metrics")
        group.cancel_scope.cancel()
    assert answer.status_code == 200
    assert "blocking_probe 1.0" in answer.text
