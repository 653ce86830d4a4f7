"""Several ``salad-vk run`` processes sharing nodes, and eyes on what the cluster saw.

The replica tests run on a control plane of their own whose node lifecycle controller
allows a 40 s grace, the shortest a real cluster has (40 s before Kubernetes 1.32, 50 s
since): a takeover must fit inside it. The session's shared control plane keeps 20 s
for the tests that watch the controller react.

``ClusterWatch`` reads the API server every half second for the whole test: every
distinct ``renewTime`` of every node's Lease (the gaps between them are what the node
lifecycle controller judges), every holder, and any Ready condition that is not True.
"""

from __future__ import annotations

import itertools
import json
import signal
import socket
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import yaml
from anyio.abc import Process
from prometheus_client.parser import text_string_to_metric_families

from nodes.kube import KubeClient, KubeError
from nodes.saladcloud.simulator import Simulator

from .harness import ORG, salad_vk_run

GRACE_SECONDS = 40.0
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def projects_file(
    path: Path,
    api_url: str,
    nodes: Mapping[str, str],
    keys: Mapping[str, str],
    **top: Any,
) -> Path:
    """A projects file: ``nodes`` node -> project, ``keys`` project -> API key."""
    entries = []
    for name, project in nodes.items():
        key_file = path.parent / "keys" / name
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(keys[project] + "\n")
        entries.append(
            {"name": name, "organization": ORG, "project": project, "apiKeyFile": str(key_file)}
        )
    document = {"saladApiUrl": api_url, "defaults": {"pollInterval": 1}, "nodes": entries, **top}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def kubeconfig_through(kubeconfig: Path, port: int, target: Path) -> Path:
    """A copy of ``kubeconfig`` whose server is ``127.0.0.1:port`` (a proxy)."""
    document = json.loads(kubeconfig.read_text())
    for entry in document["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    target.write_text(json.dumps(document))
    return target


@dataclass
class Replica:
    identity: str
    process: Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"{self.url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def metric(self, name: str, **labels: str) -> float:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"{self.url}/metrics")).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    async def terminate(self, timeout: float = 40.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(timeout):
            return await self.process.wait()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)


@asynccontextmanager
async def replica(
    identity: str,
    projects: Path,
    kubeconfig: Path,
    namespace: str,
    work: Path,
    *extra: str,
) -> AsyncIterator[Replica]:
    """``salad-vk run --identity IDENTITY`` in a process of its own; killed if the block
    leaves it running."""
    port = free_port()
    log = work / f"{identity}.log"
    async with salad_vk_run(
        projects,
        kubeconfig,
        log,
        "--identity",
        identity,
        "--lease-namespace",
        namespace,
        "--log-format",
        "json",
        "--config-poll-interval-seconds",
        "0.5",
        *extra,
        metrics_address=f"127.0.0.1:{port}",
    ) as process:
        yield Replica(identity, process, port, log)


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class ClusterWatch:
    """What the API server says about ``nodes`` the whole time the watch runs."""

    kube: KubeClient
    nodes: Sequence[str]
    renewals: dict[str, list[datetime]] = field(default_factory=dict)
    holders: dict[str, list[str]] = field(default_factory=dict)
    not_ready: list[tuple[str, str, float]] = field(default_factory=list)
    """(node, Ready status, time.time()) for every look that found it not True."""

    async def run(self) -> None:
        while True:
            with suppress(KubeError):
                await self._look()
            await anyio.sleep(0.5)

    async def _look(self) -> None:
        leases = {
            item["metadata"]["name"]: item
            for item in (await self.kube.get(LEASES)).get("items") or []
        }
        for name in self.nodes:
            lease = leases.get(name)
            if lease is None:
                continue
            spec = lease.get("spec") or {}
            if spec.get("renewTime"):
                renewed = _when(spec["renewTime"])
                seen = self.renewals.setdefault(name, [])
                if not seen or renewed != seen[-1]:
                    seen.append(renewed)
            holder = str(spec.get("holderIdentity") or "")
            held = self.holders.setdefault(name, [])
            if not held or holder != held[-1]:
                held.append(holder)
        found = (await self.kube.get("/api/v1/nodes")).get("items") or []
        for node in found:
            name = node["metadata"]["name"]
            if name not in self.nodes:
                continue
            for condition in node["status"].get("conditions") or []:
                if condition["type"] == "Ready" and condition["status"] != "True":
                    self.not_ready.append((name, condition["status"], time.time()))

    def largest_gap(self) -> float:
        gaps = [
            (later - earlier).total_seconds()
            for seen in self.renewals.values()
            for earlier, later in itertools.pairwise(seen)
        ]
        return max(gaps, default=0.0)


async def holders(kube: KubeClient, nodes: Sequence[str]) -> dict[str, str]:
    """Node -> the identity holding its Lease now ('' when released or absent)."""
    leases = {
        item["metadata"]["name"]: item for item in (await kube.get(LEASES)).get("items") or []
    }
    found = {}
    for name in nodes:
        holder = str(((leases.get(name) or {}).get("spec") or {}).get("holderIdentity") or "")
        found[name] = holder.split("/", maxsplit=1)[0]
    return found


async def renewed_since(kube: KubeClient, node: str) -> tuple[str, datetime | None]:
    lease = await kube.get(f"{LEASES}/{node}")
    spec = lease.get("spec") or {}
    holder = str(spec.get("holderIdentity") or "").split("/", maxsplit=1)[0]
    return holder, _when(spec["renewTime"]) if spec.get("renewTime") else None


def groups_by_owner(sim: Simulator, projects: Sequence[str]) -> dict[str, list[str]]:
    """Pod UID -> names of its live groups, over ``projects``."""
    owners: dict[str, list[str]] = {}
    for project in projects:
        for group in sim.groups(ORG, project, include_deleted=False):
            env = group.document["container"].get("environment_variables") or {}
            owners.setdefault(env.get("SALAD_VK_POD_UID", "?"), []).append(group.name)
    return owners


def deleted_groups(sim: Simulator, projects: Sequence[str]) -> list[str]:
    return [g.name for p in projects for g in sim.groups(ORG, p, include_deleted=True) if g.deleted]
