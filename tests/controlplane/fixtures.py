"""pytest fixtures: one real control plane per test session, a fresh namespace per test.

The control plane is started lazily, by the first test that asks for it, and stopped
at the end of the session whatever happened in between; its processes are also tied
to the pytest process by ``PR_SET_PDEATHSIG``, so even a killed test run leaves no
etcd or kube-* process behind.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from . import cluster

# Tests watch the node lifecycle controller react, so it must react in seconds; the
# virtual nodes renew their leases every 10 s, so the grace stays at twice that.
NODE_MONITOR_GRACE_SECONDS = 20.0


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ControlPlane]:
    folder: Path = tmp_path_factory.mktemp("controlplane")
    plane = cluster.up(
        folder,
        node_monitor_grace_period=NODE_MONITOR_GRACE_SECONDS,
        die_with_parent=True,
    )
    try:
        yield plane
    finally:
        cluster.down(folder)


@pytest.fixture
def kubeconfig(control_plane: cluster.ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture
async def kube_api(control_plane: cluster.ControlPlane) -> AsyncIterator[ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(control_plane.kubeconfig), client_configuration=configuration
    )
    async with ApiClient(configuration=configuration) as api:
        yield api


@pytest.fixture
async def namespace(kube_api: ApiClient) -> AsyncIterator[str]:
    """A namespace of its own for one test, ready for pods (its ServiceAccount exists)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(kube_api)
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # The ServiceAccount admission plugin refuses pods until the controller-manager
    # has created the namespace's `default` ServiceAccount.
    with anyio.fail_after(30):
        while True:
            try:
                await core.read_namespaced_service_account("default", name)
                break
            except ApiException as error:
                if error.status != 404:
                    raise
                await anyio.sleep(0.1)
    try:
        yield name
    finally:
        try:
            await core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise
