"""Fixtures of the replica tests (a control plane of their own, see ``replicas.py``), and
of the collector's."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from pathlib import Path

import anyio
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeError, KubeNotFound
from tests.controlplane import cluster

from .replicas import GRACE_SECONDS


@pytest.fixture(scope="module")
def ha_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ControlPlane]:
    folder: Path = tmp_path_factory.mktemp("ha-controlplane")
    plane = cluster.up(folder, node_monitor_grace_period=GRACE_SECONDS, die_with_parent=True)
    try:
        yield plane
    finally:
        cluster.down(folder)


@pytest.fixture
async def ha_kube(ha_plane: cluster.ControlPlane) -> AsyncIterator[KubeClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(ha_plane.kubeconfig), client_configuration=configuration
    )
    async with ApiClient(configuration=configuration) as api:
        yield KubeClient(api, node="test")


@pytest.fixture
async def ha_namespace(ha_kube: KubeClient) -> AsyncIterator[str]:
    """A namespace for the test's pods and the replicas' membership Leases."""
    name = f"ha-{uuid.uuid4().hex[:8]}"
    await ha_kube.post("/api/v1/namespaces", {"metadata": {"name": name}})
    with anyio.fail_after(30):
        while True:
            try:
                await ha_kube.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
                break
            except KubeNotFound:
                await anyio.sleep(0.1)
    try:
        yield name
    finally:
        with suppress(KubeError):
            await ha_kube.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def collections_seen() -> Iterator[list[int]]:
    """The generation of every collection that starts while the test runs, from an
    empty youngest generation (so that what came before cannot start one)."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    was_enabled = gc.isenabled()
    gc.enable()
    gc.callbacks.append(note)
    gc.collect()
    seen.clear()
    yield seen
    gc.callbacks.remove(note)
    if not was_enabled:
        gc.disable()
