"""The KEDA example: accepted by KEDA's own CRDs, and spread over every virtual node."""

from __future__ import annotations

import collections
import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from tests.controlplane.cluster import ControlPlane
from tests.nodes.harness import eventually, phase, pods
from tests.supervisor.harness import ORG, schedulable, simulator

from .chart import REPO, Manifest
from .kube import create, ensure_crds
from .release import release_values, running_release

pytestmark = pytest.mark.anyio

EXAMPLE = REPO / "examples" / "keda"
AMQP_URL = "amqp://worker:s3cret-keda-test@rabbitmq.messaging.svc:5672/"


def keda_crds(files: list[Path]) -> list[Manifest]:
    """The CRDs of the ``keda_crd_files`` fixture (``tests/reference_files.py``)."""
    crds = [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc]
    kinds = {crd["spec"]["names"]["kind"] for crd in crds}
    assert {"ScaledObject", "TriggerAuthentication"} <= kinds, kinds
    return crds


def example(file: str) -> Manifest:
    manifest = yaml.safe_load((EXAMPLE / file).read_text())
    assert isinstance(manifest, dict)
    return manifest


def in_namespace(manifest: Manifest, namespace: str) -> Manifest:
    placed = copy.deepcopy(manifest)
    placed["metadata"]["namespace"] = namespace
    return placed


def narrowed_to(deployment: Manifest, label: str, value: str) -> Manifest:
    """The example Deployment, limited to the nodes carrying ``label=value``, as its
    comments suggest for one release's nodes: virtual nodes of other tests stay out."""
    narrowed = copy.deepcopy(deployment)
    affinity = narrowed["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    for term in terms:
        term["matchExpressions"].append({"key": label, "operator": "In", "values": [value]})
    return narrowed


def test_the_example_fits_together() -> None:
    deployment = example("deployment.yaml")
    scaled = example("scaledobject.yaml")
    auth = example("triggerauthentication.yaml")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    # KEDA and the worker read the queue with the same Secret.
    (ref,) = auth["spec"]["secretTargetRef"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    secret_refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert {"name": ref["name"], "key": ref["key"]} in secret_refs
    # Spread over salad-vk's nodes, one domain per SaladCloud project.
    spec = deployment["spec"]["template"]["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expressions = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert {"key": "type", "operator": "In", "values": ["virtual-kubelet"]} in expressions
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "salad.com/project"
    assert spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert spec["tolerations"] == [
        {
            "key": "virtual-kubelet.io/provider",
            "operator": "Equal",
            "value": "saladcloud",
            "effect": "NoSchedule",
        }
    ]
    assert deployment["spec"]["replicas"] == 0


async def test_scaling_the_example_0_12_0_spreads_over_every_node_and_cleans_up(
    keda_crd_files: list[Path],  # first: a missing file skips before the control plane starts
    kube_api: ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
) -> None:
    admin = KubeClient(kube_api, node="test")
    await ensure_crds(admin, keda_crds(keda_crd_files))
    prefix = f"k{uuid.uuid4().hex[:6]}"
    nodes = {f"{prefix}-{i}": f"{prefix}-p{i}" for i in range(3)}
    projects = list(nodes.values())

    await admin.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "rabbitmq-connection"}, "stringData": {"host": AMQP_URL}},
    )
    # The API server checks both against KEDA's published schema (unknown fields too).
    auth = await create(admin, in_namespace(example("triggerauthentication.yaml"), namespace))
    scaled = await create(admin, in_namespace(example("scaledobject.yaml"), namespace))
    assert auth["kind"] == "TriggerAuthentication"
    assert scaled["spec"]["triggers"][0]["type"] == "rabbitmq"

    deployment = narrowed_to(example("deployment.yaml"), "salad-vk-test/run", prefix)
    name = deployment["metadata"]["name"]
    selector = f"app.kubernetes.io/name={name}"
    async with simulator(projects) as sim:
        values = release_values(sim, nodes, [namespace])
        values["nodeDefaults"]["labels"] = {"salad-vk-test/run": prefix}
        async with running_release(kube_api, control_plane.kubeconfig, namespace, values, tmp_path):

            async def ready() -> bool:
                return await schedulable(admin, list(nodes))

            await eventually(ready, 30, "3 nodes Ready and schedulable")
            await create(admin, in_namespace(deployment, namespace))

            async def scale(replicas: int) -> None:
                # What KEDA does to its target, to and from zero: the scale subresource.
                await admin.patch(
                    f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
                    {"spec": {"replicas": replicas}},
                    kind="merge",
                )

            await scale(12)

            async def twelve_running() -> bool:
                found = await pods(admin, namespace, selector)
                return len(found) == 12 and all(phase(p) == "Running" for p in found)

            await eventually(twelve_running, 90, "12 pods Running")
            running = await pods(admin, namespace, selector)
            per_node = collections.Counter(p["spec"]["nodeName"] for p in running)
            assert per_node == dict.fromkeys(nodes, 4)
            groups: list[Any] = [
                g for p in projects for g in sim.groups(ORG, p, include_deleted=False)
            ]
            assert collections.Counter(g.project for g in groups) == dict.fromkeys(projects, 4)
            container = groups[0].document["container"]
            assert container["environment_variables"]["RABBITMQ_URL"] == AMQP_URL
            assert container["resources"]["gpu_classes"]

            await scale(0)

            async def all_gone() -> bool:
                left = await pods(admin, namespace, selector)
                remaining = sum(len(sim.groups(ORG, p, include_deleted=False)) for p in projects)
                return not left and remaining == 0

            await eventually(all_gone, 90, "no pod and no container group left")
