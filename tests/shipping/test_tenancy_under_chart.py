"""Issue 13's acceptance as a user installs it: the chart's ServiceAccount, RBAC and
admission policies, and a node that still says no behind them.

The API server cannot tell a Secret name in ``imagePullSecrets`` or an annotation from
a path, nor stop a pod that names its node from skipping the scheduler's taints: the
node refuses those itself, before any read and before SaladCloud hears of them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from tests.controlplane.cluster import ControlPlane
from tests.manifests import TOLERATION
from tests.nodes.harness import eventually
from tests.supervisor.harness import ORG, simulator

from .release import release_values, running_release

pytestmark = pytest.mark.anyio

MAIN = {"name": "main", "image": "nginx:1.27", "command": ["nginx"]}
TRAVERSALS = [
    "../../{victim}/secrets/regcred",
    "..%2F..%2F{victim}%2Fsecrets%2Fregcred",
    "regcred?namespace={victim}",
]

SHIPPING = {"salad.com/logging-http-host": "evil.test", "salad.com/logging-http-port": "443"}
"""Logs shipped to a host of the attacker's choosing, the password from a Secret."""


def pod(name: str, node: str, *, tolerate: bool = True, **more: Any) -> dict[str, Any]:
    annotations = more.pop("annotations", {})
    spec: dict[str, Any] = {"nodeName": node, "containers": [MAIN], **more}
    if tolerate:
        spec["tolerations"] = [TOLERATION]
    return {"metadata": {"name": name, "annotations": annotations}, "spec": spec}


async def waiting_reason(kube: KubeClient, namespace: str, name: str) -> tuple[str, str]:
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    found: dict[str, Any] = {}

    async def waiting() -> bool:
        found.clear()
        found.update(await kube.get(path))
        statuses = (found.get("status") or {}).get("containerStatuses") or [{}]
        state = (statuses[0].get("state") or {}).get("waiting") or {}
        return state.get("reason") not in (None, "ContainerCreating")

    await eventually(waiting, 30, f"pod {name} refused")
    state = found["status"]["containerStatuses"][0]["state"]["waiting"]
    return str(state["reason"]), str(state["message"])


async def test_traversals_other_tenants_and_skipped_taints_are_refused_under_the_chart(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    admin = KubeClient(kube_api, node="test")
    victim = f"t-{uuid.uuid4().hex[:10]}"
    outsider = f"t-{uuid.uuid4().hex[:10]}"
    for name in (victim, outsider):
        await admin.post("/api/v1/namespaces", {"metadata": {"name": name}})
    node, project = f"u{uuid.uuid4().hex[:6]}", f"u{uuid.uuid4().hex[:6]}-p"
    try:
        await admin.post(
            f"/api/v1/namespaces/{victim}/secrets",
            {"metadata": {"name": "regcred"}, "stringData": {"password": "team-a-value"}},
        )
        async with simulator([project]) as sim:
            # The chart's pod policy refuses these pods at creation already (its own
            # tests show it); set to warn only, it lets them through to show that the
            # node, the last line, refuses them too.
            values = release_values(
                sim,
                {node: project},
                [namespace],
                podAdmissionPolicy={"validationActions": ["Warn"]},
            )
            async with running_release(
                kube_api, control_plane.kubeconfig, namespace, values, tmp_path
            ) as release:
                await eventually(
                    lambda: _ready(release.supervisor.supervisor.readiness()), 30, "node Ready"
                )
                for index, template in enumerate(TRAVERSALS):
                    name = template.format(victim=victim)
                    pulls, logs = f"pull-{index}", f"logs-{index}"
                    await admin.post(
                        f"/api/v1/namespaces/{namespace}/pods",
                        pod(pulls, node, imagePullSecrets=[{"name": name}]),
                    )
                    await admin.post(
                        f"/api/v1/namespaces/{namespace}/pods",
                        pod(
                            logs,
                            node,
                            annotations={**SHIPPING, "salad.com/logging-secret": name},
                        ),
                    )
                    reason, message = await waiting_reason(admin, namespace, pulls)
                    assert (reason, message.split(":")[0]) == (
                        "InvalidImagePullSecret",
                        "spec.imagePullSecrets[0].name",
                    )
                    reason, message = await waiting_reason(admin, namespace, logs)
                    assert reason == "InvalidAnnotation"
                    assert message.startswith("metadata.annotations['salad.com/logging-secret']")

                await admin.post(f"/api/v1/namespaces/{outsider}/pods", pod("intruder", node))
                assert (await waiting_reason(admin, outsider, "intruder"))[0] == (
                    "NamespaceNotAllowed"
                )
                await admin.post(
                    f"/api/v1/namespaces/{namespace}/pods", pod("skipper", node, tolerate=False)
                )
                assert (await waiting_reason(admin, namespace, "skipper"))[0] == (
                    "TaintNotTolerated"
                )

                secret_reads = sum(
                    sample.value
                    for metric in release.supervisor.shared.registry.collect()
                    if metric.name == "salad_vk_kubernetes_requests"
                    for sample in metric.samples
                    if sample.name.endswith("_total") and sample.labels.get("resource") == "secrets"
                )
                assert secret_reads == 0, "no Secret read reached the API server"
                assert not sim.groups(ORG, project, include_deleted=True), "nothing was created"
                assert not [r for r in sim.requests() if r.method == "POST"]
    finally:
        for name in (victim, outsider):
            await admin.delete(f"/api/v1/namespaces/{name}")


async def _ready(readiness: dict[str, bool]) -> bool:
    return bool(readiness) and all(readiness.values())
