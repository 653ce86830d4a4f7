"""/metrics, /healthz and /readyz on one port, as Prometheus and the kubelet read them."""

from __future__ import annotations

import contextlib
import gc
import itertools
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx
import prometheus_client
import pytest
from kubernetes_asyncio.client.api_client import ApiClient
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from nodes.kube import KubeNotFound
from supervisor.endpoints import render
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


class _Turns(Collector):
    """A family of ``size`` samples; collecting it notes how many turns the event loop
    had made by then."""

    def __init__(self, name: str, size: int, turns: list[int], seen: list[int]) -> None:
        self._name = name
        self._size = size
        self._turns = turns
        self._seen = seen

    def collect(self) -> Iterator[Metric]:
        self._seen.append(self._turns[0])
        family = GaugeMetricFamily(self._name, "a \\ help\ntext", labels=["node"])
        for index in range(self._size):
            family.add_metric([f"node-{index:05d}"], float(index))
        yield family


@contextlib.contextmanager
def _created_samples(on: bool) -> Iterator[None]:
    """With or without the ``_created`` samples (``salad-vk run`` renders without)."""
    was = prometheus_client.metrics._use_created
    if on:
        prometheus_client.enable_created_metrics()  # type: ignore[no-untyped-call]
    else:
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        prometheus_client.metrics._use_created = was


@pytest.fixture
def created_samples_off() -> Iterator[None]:
    with _created_samples(on=False):
        yield


@pytest.mark.usefixtures("created_samples_off")
async def test_metrics_render_as_prometheus_client_does_letting_the_loop_run_in_between() -> None:
    registry = CollectorRegistry()
    turns = [0]
    seen: list[int] = []
    for index, size in enumerate([1, 3, 2500, 1000, 1001]):
        registry.register(_Turns(f"family_{index}", size, turns, seen))
    counter = Counter("requests", "a counter", ["node", "verb"], registry=registry)
    for index in range(1200):
        counter.labels(f"node-{index}", "PUT").inc()
    histogram = Histogram("latency", "a histogram", ["node"], registry=registry)
    for index in range(300):  # 300 x 17 samples
        histogram.labels(f"node-{index}").observe(index / 100)
    page = 0
    async with anyio.create_task_group() as group:

        async def turning() -> None:
            while True:
                turns[0] += 1
                await anyio.lowlevel.checkpoint()

        group.start_soon(turning)
        rendered = await render(registry)
        page = turns[0]
        group.cancel_scope.cancel()
    # Every family collected in a turn of its own, and the large ones' slices too:
    # 5 + 2 + 1 + 2 + 6 slices of at most 1,000 samples.
    assert len(seen) == 5
    assert all(earlier < later for earlier, later in itertools.pairwise(seen))
    assert page >= 5 + 2 + 1 + 2 + 6 - 1
    assert rendered.decode() == generate_latest(registry).decode()


@pytest.mark.usefixtures("created_samples_off")
async def test_no_collection_starts_while_a_render_is_under_way(
    collections_seen: list[int],
) -> None:
    registry = CollectorRegistry()
    young = gc.get_threshold()[0]
    begun: list[int] = []
    registry.register(_Turns("many", 5 * young, [0], begun))
    seen_meanwhile: list[int] = []
    kept: list[list[object]] = []
    done = anyio.Event()

    async def rendering() -> None:
        await render(registry)
        done.set()

    assert gc.isenabled()
    async with anyio.create_task_group() as group:
        group.start_soon(rendering)
        while not begun:
            await anyio.lowlevel.checkpoint()
        while not done.is_set():
            # Another task's objects, made between the render's slices, and kept.
            kept.extend([] for _ in range(young))
            seen_meanwhile.append(len(collections_seen))
            await anyio.lowlevel.checkpoint()
    assert len(seen_meanwhile) >= 3, "the other task ran while the page was rendered"
    assert seen_meanwhile[-1] == 0, "no collection began before the page was written"
    assert gc.isenabled()


async def test_metrics_with_created_samples_render_as_prometheus_client_does() -> None:
    registry = CollectorRegistry()
    counter = Counter("requests", "a counter", ["node"], registry=registry)
    for index in range(1500):
        counter.labels(f"node-{index}").inc()
    with _created_samples(on=True):
        assert (await render(registry)) == generate_latest(registry)
