"""/metrics, /healthz and /readyz on one port, as Prometheus and the kubelet read them."""

from __future__ import annotations

import uuid
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
from kubernetes_asyncio.client.api_client import ApiClient
from prometheus_client.parser import text_string_to_metric_families

from nodes.kube import KubeNotFound
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
