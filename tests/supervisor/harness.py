"""A supervisor in-process, against the real control plane and the simulator."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import yaml
from anyio.abc import Process
from kubernetes_asyncio.client.api_client import ApiClient

from config import ProcessSettings
from nodes.kube import KubeClient, KubeNotFound
from nodes.saladcloud.simulator import Simulator, SimulatorOptions, running_simulator
from supervisor.supervisor import NodeWrapper, Shared, Supervisor, running

ORG = "acme"
TIME_SCALE = 600.0


def key_of(project: str) -> str:
    """A distinctive API key per project, easy to grep for in logs."""
    return f"sk-sup-{project}-5e1b7c9d3f2a4c6e8a0b"


@asynccontextmanager
async def simulator(projects: Sequence[str], **overrides: Any) -> AsyncIterator[Simulator]:
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "project": [f"{ORG}/{p}" for p in projects],
        "api-key": [key_of(p) for p in projects],
        "rate-limit": 6000,
        "time-scale": TIME_SCALE,
        **overrides,
    }
    async with running_simulator(SimulatorOptions.model_validate(values)) as sim:
        yield sim


class ConfigMapDir:
    """A projects file laid out as the kubelet mounts a ConfigMap, updated the same way:
    the data lives in a timestamped directory, ``..data`` points at it, and the file
    name points through ``..data``; an update swaps ``..data`` atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = root / "projects.yaml"
        self._version = 0

    def write(self, text: str) -> None:
        self._version += 1
        data = self.root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{self._version}"
        data.mkdir()
        (data / "projects.yaml").write_text(text)
        staged = self.root / "..data_tmp"
        staged.symlink_to(data.name)
        staged.replace(self.root / "..data")
        if not self.path.is_symlink():
            self.path.symlink_to("..data/projects.yaml")


def projects_yaml(
    sim: Simulator,
    keys_dir: Path,
    nodes: Mapping[str, str],
    *,
    poll_interval: float = 1.0,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A projects file serving ``nodes`` (node name -> project), each with a key file."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, project in nodes.items():
        key_file = keys_dir / project
        key_file.write_text(key_of(project) + "\n")
        entries.append(
            {
                "name": name,
                "organization": ORG,
                "project": project,
                "apiKeyFile": str(key_file),
                **(dict(extra.get(name, {})) if extra else {}),
            }
        )
    document = {
        "saladApiUrl": sim.url,
        "defaults": {"pollInterval": poll_interval},
        "nodes": entries,
    }
    return yaml.safe_dump(document, sort_keys=False)


@dataclass
class RunningSupervisor:
    supervisor: Supervisor
    kube: KubeClient
    shared: Shared

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.supervisor.endpoints.port}"

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        return self.shared.registry.get_sample_value(name, dict(labels or {})) or 0.0

    async def lease_holder(self, node: str) -> str:
        lease = await self.kube.get(
            f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}"
        )
        return str(lease["spec"]["holderIdentity"])


@asynccontextmanager
async def running_supervisor(
    kube_api: ApiClient,
    config: Path,
    *,
    wrap_node: NodeWrapper | None = None,
    node_ip: str = "127.0.0.1",
    **settings: Any,
) -> AsyncIterator[RunningSupervisor]:
    values: dict[str, Any] = {
        "config": config,
        "metrics_address": "127.0.0.1:0",
        "config_poll_interval_seconds": 0.2,
        "restart_backoff_initial_seconds": 0.2,
        "restart_backoff_max_seconds": 2.0,
        "drain_timeout_seconds": 60.0,
        # A free port: several supervisors run at once in some tests.
        "kubelet_address": "127.0.0.1:0",
        **settings,
    }
    process = ProcessSettings.from_sources(values, {})
    async with running(
        process, kube_api=kube_api, wrap_node=wrap_node, node_ip=node_ip
    ) as supervisor:
        yield RunningSupervisor(supervisor, KubeClient(kube_api, node="test"), supervisor.shared)


NOT_SCHEDULABLE_TAINTS = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


async def schedulable(kube: KubeClient, names: Sequence[str]) -> bool:
    """Whether the scheduler sees every node as Ready: a node just registered carries
    ``node.kubernetes.io/not-ready`` until the node lifecycle controller has seen its
    Ready condition, and a spread that honours taints counts it out until then."""
    for name in names:
        try:
            node = await kube.get(f"/api/v1/nodes/{name}")
        except KubeNotFound:
            return False
        conditions = {c["type"]: c["status"] for c in node["status"].get("conditions") or []}
        taints = {t["key"] for t in node["spec"].get("taints") or []}
        if conditions.get("Ready") != "True" or taints & NOT_SCHEDULABLE_TAINTS:
            return False
    return True


@asynccontextmanager
async def salad_vk_run(
    config: Path,
    kubeconfig: Path,
    log: Path,
    *extra: str,
    metrics_address: str = "127.0.0.1:0",
) -> AsyncIterator[Process]:
    """``salad-vk run`` in a process of its own, its output in ``log``; killed if the
    block leaves it running. Its kubelet API takes a free port: several may run at once."""
    command = [
        sys.executable,
        "-m",
        "supervisor",
        "run",
        "--config",
        str(config),
        "--kubeconfig",
        str(kubeconfig),
        "--metrics-address",
        metrics_address,
        "--kubelet-address",
        "127.0.0.1:0",
        *extra,
    ]
    with log.open("ab") as sink:
        process = await anyio.open_process(command, stdout=sink, stderr=sink)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
