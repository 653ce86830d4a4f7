"""``salad-vk demo``: the whole thing, offline, in one command.

It starts the SaladCloud simulator with three projects, a Kubernetes API (the
cluster of ``--kubeconfig``, else a local control plane built from the source tree's
``tests/controlplane``), and the supervisor serving one virtual node per project.
Then it scales a sample Deployment — spread over the projects the way a platform
engineer would spread a KEDA-scaled worker — up and back down, printing what
Kubernetes and SaladCloud see at each step, and removes everything it created.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import yaml

from config import ProcessSettings
from nodes.kube import KubeClient, KubeNotFound
from nodes.saladcloud.simulator import Simulator, SimulatorOptions, running_simulator
from nodes.settings import PROVIDER_TAINT

from .errors import CliError
from .logs import configure
from .supervisor import running

ORGANIZATION = "demo-org"
PROJECTS = ("gpu-east", "gpu-west", "gpu-eu")
NAMESPACE = "salad-vk-demo"
APP = "inference"
_KEY = "demo-key-not-a-secret"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        help="show scale-up and scale-down across three simulated projects, offline",
        description="Start the SaladCloud simulator (three projects), a Kubernetes API and "
        "the supervisor; scale a sample Deployment spread over the three virtual nodes up "
        "and down while printing progress; then clean up everything.",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="use this cluster (it gets three nodes salad-demo-* and the namespace "
        f"{NAMESPACE} for the duration); default: start a local control plane from "
        "tests/controlplane (the first start builds it, which takes minutes)",
    )
    parser.add_argument(
        "--replicas", type=int, default=9, metavar="N", help="the scale-up target (9)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        metavar="F",
        help="SaladCloud time per wall second (60: a minute of deployment per second)",
    )
    parser.set_defaults(handler=demo)


class _Printer:
    def __init__(self, out: Any = sys.stdout) -> None:
        self._out = out
        self._last = ""
        self._started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self._started:5.1f}s] {text}", file=self._out, flush=True)

    def table(self, text: str) -> None:
        if text != self._last:
            self._last = text
            print(text, file=self._out, flush=True)


@contextlib.contextmanager
def _kubeconfig(given: Path | None, printer: _Printer) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    try:
        controlplane = importlib.import_module("tests.controlplane")
    except ImportError:
        raise SystemExit(
            "salad-vk demo: no --kubeconfig given and tests/controlplane is not importable; "
            "run it from the source tree (see README) or pass --kubeconfig"
        ) from None
    printer.say("starting a local Kubernetes control plane (the first time builds it: minutes)")
    with tempfile.TemporaryDirectory(prefix="salad-vk-demo-") as folder:
        try:
            plane = controlplane.up(Path(folder), die_with_parent=True)
        except (controlplane.BuildError, controlplane.ControlPlaneError) as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise CliError(
                f"cannot start a local control plane: {first}; pass --kubeconfig FILE to"
                " use a cluster instead"
            ) from None
        try:
            printer.say(f"control plane ready at {plane.server}")
            yield Path(plane.kubeconfig)
        finally:
            controlplane.down(Path(folder))
            printer.say("control plane stopped")


def _deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {
                                                "key": "salad.com/organization",
                                                "operator": "In",
                                                "values": [ORGANIZATION],
                                            }
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "salad.com/project",
                            "whenUnsatisfiable": "DoNotSchedule",
                            "labelSelector": {"matchLabels": {"app": APP}},
                        }
                    ],
                    "tolerations": [{**PROVIDER_TAINT, "operator": "Equal"}],
                    "containers": [
                        {
                            "name": "model",
                            "image": "ghcr.io/example/inference:1.0",
                            "command": ["python", "-m", "serve"],
                            "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
                        }
                    ],
                },
            },
        },
    }


def _node_name(project: str) -> str:
    return f"salad-demo-{project}"


@dataclass(frozen=True)
class Progress:
    """What the demo shows at one moment, and what its steps wait for."""

    table: str
    nodes_ready: int
    pods_running: int
    groups: dict[str, int]
    """Live container groups per project."""


async def _progress(kube: KubeClient, sim: Simulator) -> Progress:
    """Nodes, pods per node and phase, and container groups per project, right now."""
    rows = []
    ready = 0
    pods = (await kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods")).get("items") or []
    phases: dict[str, Counter[str]] = {_node_name(p): Counter() for p in PROJECTS}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or "(unscheduled)"
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            phase = "Terminating"
        phases.setdefault(node, Counter())[phase] += 1
    groups = {p: len(sim.groups(ORGANIZATION, p, include_deleted=False)) for p in PROJECTS}
    for project in PROJECTS:
        name = _node_name(project)
        try:
            node = await kube.get(f"/api/v1/nodes/{name}")
            conditions = {c["type"]: c["status"] for c in node["status"].get("conditions") or []}
            # Until the node lifecycle controller has seen Ready, a new node carries
            # the not-ready taint and the scheduler passes it by.
            taints = {t["key"] for t in node["spec"].get("taints") or []}
            usable = conditions.get("Ready") == "True" and NOT_READY_TAINT not in taints
            state = "Ready" if usable else "NotReady"
        except KubeNotFound:
            state = "absent"
        ready += state == "Ready"
        counted = ", ".join(f"{n} {k}" for k, n in sorted(phases.get(name, Counter()).items()))
        rows.append(
            f"  {name:<22} {state:<9} pods: {counted or 'none':<28} "
            f"groups in {ORGANIZATION}/{project}: {groups[project]}"
        )
    running = sum(c["Running"] for c in phases.values())
    header = f"  nodes Ready: {ready}/{len(PROJECTS)}   pods Running: {running}/{len(pods)}"
    return Progress("\n".join([header, *rows]), ready, running, groups)


Check = Callable[[Progress], Awaitable[bool]]
"""Given pods Running and groups per project: is the demo's current step done?"""


async def _until(
    check: Check, printer: _Printer, kube: KubeClient, sim: Simulator, give_up_after: float
) -> None:
    deadline = time.monotonic() + give_up_after
    while True:
        progress = await _progress(kube, sim)
        printer.table(progress.table)
        if await check(progress):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"salad-vk demo: gave up after {give_up_after:.0f}s")
        await anyio.sleep(1.0)


def _projects_file(sim: Simulator, key_file: Path, projects: tuple[str, ...]) -> str:
    return yaml.safe_dump(
        {
            "saladApiUrl": sim.url,
            "defaults": {"pollInterval": 1},
            "nodes": [
                {
                    "name": _node_name(p),
                    "organization": ORGANIZATION,
                    "project": p,
                    "apiKeyFile": str(key_file),
                }
                for p in projects
            ],
        },
        sort_keys=False,
    )


@contextlib.asynccontextmanager
async def _supervisor(
    kubeconfig: Path, sim: Simulator, work: Path, printer: _Printer
) -> AsyncIterator[KubeClient]:
    """The supervisor serving one node per project; at the end the projects are removed
    from its file, and it decommissions the nodes as it would in production."""
    key_file = work / "key"
    key_file.write_text(_KEY)
    config = work / "projects.yaml"
    config.write_text(_projects_file(sim, key_file, PROJECTS))
    settings = ProcessSettings.from_sources(
        {
            "config": config,
            "kubeconfig": kubeconfig,
            "metrics_address": "127.0.0.1:0",
            "kubelet_address": "127.0.0.1:0",
            "config_poll_interval_seconds": 0.5,
        },
        {},
    )
    async with running(settings) as supervisor:
        try:
            yield KubeClient(supervisor.shared.kube_api, node="demo")
        finally:
            printer.say("removing the three projects from the file: the nodes are decommissioned")
            config.write_text(_projects_file(sim, key_file, ()))
            with anyio.move_on_after(60):
                while supervisor.slots:
                    await anyio.sleep(0.5)


async def _scale(kube: KubeClient, replicas: int) -> None:
    await kube.patch(
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{APP}/scale",
        {"spec": {"replicas": replicas}},
        kind="merge",
    )


async def _run(args: argparse.Namespace, kubeconfig: Path, printer: _Printer) -> None:
    options = SimulatorOptions.model_validate(
        {
            "listen": "127.0.0.1:0",
            "project": [f"{ORGANIZATION}/{p}" for p in PROJECTS],
            "api-key": [_KEY],
            "time-scale": args.time_scale,
        }
    )
    with tempfile.TemporaryDirectory(prefix="salad-vk-demo-") as scratch:
        async with running_simulator(options) as sim:
            printer.say(f"SaladCloud simulator serving {', '.join(PROJECTS)} at {sim.url}")
            async with _supervisor(kubeconfig, sim, Path(scratch), printer) as kube:
                printer.say("supervisor started: one virtual node per project")

                async def all_ready(progress: Progress) -> bool:
                    return progress.nodes_ready == len(PROJECTS)

                await _until(all_ready, printer, kube, sim, 60)
                with contextlib.suppress(Exception):
                    await kube.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
                await _wait_for_service_account(kube)
                await kube.post(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", _deployment(0))
                try:
                    target: int = args.replicas
                    printer.say(
                        f"scaling {APP} 0 -> {target} (through the scale subresource, as KEDA does)"
                    )
                    await _scale(kube, target)

                    async def scaled_up(progress: Progress) -> bool:
                        return (
                            progress.pods_running == target
                            and sum(progress.groups.values()) == target
                        )

                    await _until(scaled_up, printer, kube, sim, 180)
                    printer.say(f"scale-up shown: {target} pods Running, one container group each")
                    printer.say(f"scaling {APP} {target} -> 0")
                    await _scale(kube, 0)

                    async def scaled_down(progress: Progress) -> bool:
                        pods = await kube.get(f"/api/v1/namespaces/{NAMESPACE}/pods")
                        return not pods.get("items") and sum(progress.groups.values()) == 0

                    await _until(scaled_down, printer, kube, sim, 180)
                    printer.say("scale-down shown: no pod and no container group left")
                finally:
                    printer.say("cleaning up")
                    with contextlib.suppress(KubeNotFound):
                        await kube.delete(f"/api/v1/namespaces/{NAMESPACE}")
    printer.say("done")


async def _wait_for_service_account(kube: KubeClient) -> None:
    for _ in range(300):
        try:
            await kube.get(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")
        except KubeNotFound:
            await anyio.sleep(0.1)
        else:
            return


def demo(args: argparse.Namespace) -> int:
    configure("WARNING")
    logging.getLogger("supervisor").setLevel(logging.WARNING)
    printer = _Printer()
    with _kubeconfig(args.kubeconfig, printer) as kubeconfig:
        anyio.run(_run, args, kubeconfig, printer)
    return 0
