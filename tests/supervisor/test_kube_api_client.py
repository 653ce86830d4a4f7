"""The process's Kubernetes client reads the environment once, not per request."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from config import ProcessSettings
from nodes.kube import KubeClient, KubeError
from supervisor.supervisor import kube_api_client

pytestmark = [pytest.mark.anyio, pytest.mark.controlplane]


def settings(kubeconfig: Path) -> ProcessSettings:
    return ProcessSettings.from_sources({"config": "unused.yaml", "kubeconfig": kubeconfig}, {})


def dead_proxy() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_proxy_variables_set_after_start_up_are_not_read_per_request(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await kube_api_client(settings(kubeconfig), environ={})
    try:
        # aiohttp's trust_env would pick these up on the next request and fail on it.
        monkeypatch.setenv("HTTPS_PROXY", dead_proxy())
        monkeypatch.setenv("https_proxy", dead_proxy())
        monkeypatch.setenv("NETRC", "/nonexistent/netrc")
        namespace = await KubeClient(api, node="test").get("/api/v1/namespaces/default")
        assert namespace["metadata"]["name"] == "default"
        assert api.rest_client.pool_manager.trust_env is False
    finally:
        await api.close()


async def test_a_proxy_in_the_environment_at_start_up_is_used(kubeconfig: Path) -> None:
    api = await kube_api_client(settings(kubeconfig), environ={"HTTPS_PROXY": dead_proxy()})
    try:
        with pytest.raises(KubeError):
            await KubeClient(api, node="test", timeout=5).get("/api/v1/namespaces/default")
    finally:
        await api.close()


async def test_no_proxy_lets_the_api_server_be_reached_directly(kubeconfig: Path) -> None:
    environ = {"HTTPS_PROXY": dead_proxy(), "NO_PROXY": "127.0.0.1,localhost"}
    api = await kube_api_client(settings(kubeconfig), environ=environ)
    try:
        namespace = await KubeClient(api, node="test").get("/api/v1/namespaces/default")
        assert namespace["metadata"]["name"] == "default"
    finally:
        await api.close()
