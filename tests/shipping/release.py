"""A release of the chart, run the way its pod runs it, but in-process.

The identity objects the chart renders (ServiceAccount, ClusterRole, Roles and their
bindings, the FlowSchema) and its admission policies are created for real, and every
test waits until the API server enforces the policies; the supervisor runs in this
process with an ``ApiClient`` that impersonates the chart's ServiceAccount, so every
call it makes is authorized by the chart's RBAC, checked by its policies, and nothing
else. Its projects file is the chart's ConfigMap, with each API key file laid out where
the chart mounts its Secret. The chart is rendered with cluster access, as `helm
install` and `helm upgrade` render it (``lookup`` reads the cluster).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeError, KubeNotFound
from nodes.saladcloud.simulator import Simulator
from tests.nodes.harness import eventually
from tests.supervisor.harness import (
    ConfigMapDir,
    RunningSupervisor,
    key_of,
    running_supervisor,
)

from .chart import Manifest, node, of_kind, one, projects_file, render
from .kube import apply, create, delete_all, impersonating, service_account_identity

# Where the chart mounts the API-key Secrets in the pod (templates/_helpers.tpl).
KEYS_DIR = "/etc/salad-vk/keys"
IDENTITY_KINDS = (
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "FlowSchema",
)
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
PROVIDER_TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Equal",
    "value": "saladcloud",
    "effect": "NoSchedule",
}


@dataclass
class Release:
    name: str
    namespace: str
    values: dict[str, Any]
    objects: list[Manifest]
    config: ConfigMapDir
    keys_root: Path
    service_account: str
    supervisor: RunningSupervisor
    as_service_account: KubeClient
    admin: KubeClient
    kubeconfig: Path

    def deliver(self, objects: list[Manifest]) -> None:
        """Deliver a re-rendered ConfigMap the way the kubelet does (a ``..data`` swap)."""
        self.config.write(mounted_projects_file(objects, self.keys_root))

    async def upgrade(self, values: dict[str, Any]) -> list[Manifest]:
        """What `helm upgrade` does: render again (``lookup`` sees the cluster as it is
        now), update the identity objects and the policies, remove the ones no longer
        rendered; then the kubelet delivers the new projects file, which may well be
        after the policies changed."""
        objects = render(
            values,
            release=self.name,
            namespace=self.namespace,
            kubeconfig=self.kubeconfig,
            upgrade=True,
        )
        wanted = managed(objects)
        for manifest in wanted:
            await apply(self.admin, manifest)
        gone = {identity(o) for o in managed(self.objects)} - {identity(o) for o in wanted}
        await delete_all(self.admin, [o for o in managed(self.objects) if identity(o) in gone])
        self.values, self.objects = values, objects
        self.deliver(objects)
        return objects


def managed(objects: Sequence[Manifest]) -> list[Manifest]:
    """The objects a release test creates for real: identity, then policies."""
    return [o for o in objects if o["kind"] in IDENTITY_KINDS] + [
        o for o in objects if o["kind"] in POLICY_KINDS
    ]


def identity(manifest: Manifest) -> tuple[str, str | None, str]:
    meta = manifest["metadata"]
    return manifest["kind"], meta.get("namespace"), meta["name"]


def release_values(
    sim: Simulator, nodes: Mapping[str, str], namespaces: Sequence[str], **more: Any
) -> dict[str, Any]:
    """Chart values serving ``nodes`` (name -> project) from the simulator, to pods of
    ``namespaces``."""
    return {
        "saladApiUrl": sim.url,
        "nodeDefaults": {"pollInterval": 1, "allowedNamespaces": list(namespaces)},
        "nodes": [node(name, project) for name, project in nodes.items()],
        **more,
    }


def mounted_projects_file(objects: list[Manifest], keys_root: Path) -> str:
    """The chart's projects file, its key paths moved from the pod's mount to ``keys_root``."""
    return projects_file(objects).replace(KEYS_DIR + "/", f"{keys_root}/")


def lay_out_keys(values: Mapping[str, Any], root: Path, missing: Collection[str] = ()) -> None:
    """Each node's key file, where the chart's Secret volume puts it; none for the nodes
    named in ``missing`` (their Secret, mounted optional, does not exist yet)."""
    for entry in values["nodes"]:
        if entry["name"] in missing:
            continue
        secret = entry["apiKeySecret"]
        path = root / secret["name"] / secret["key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key_of(entry["project"]) + "\n")


def managed_by(objects: Sequence[Manifest]) -> str:
    """The --managed-by value the chart gives the process."""
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    (value,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--managed-by=")]
    return str(value)


POLICY_DENIAL = re.compile(
    r"ValidatingAdmissionPolicy '[^']+' with binding '[^']+' denied request: "
)


async def policy_refusal(request: Awaitable[Any]) -> str | None:
    """The message of the ValidatingAdmissionPolicy that refuses ``request`` (awaited
    here), or None when it passes. Any other error is raised."""
    try:
        await request
    except KubeError as error:
        found = POLICY_DENIAL.search(error.message)
        if error.status == 403 and found:
            return error.message[found.end() :]
        raise
    return None


async def denied_by_policy(request: Awaitable[Any]) -> bool:
    """Whether a ValidatingAdmissionPolicy refuses ``request`` (awaited here)."""
    return await policy_refusal(request) is not None


async def wait_for_policies(
    admin: KubeClient, as_sa: KubeClient, namespace: str, objects: Sequence[Manifest]
) -> None:
    """Return once the API server enforces the chart's policies.

    A new policy reaches admission through the API server's informer, a moment after
    it is created. Each probe is a dry-run request the policy refuses and nothing else
    does, repeated until it is refused.
    """
    # A binding that only warns or audits refuses nothing: there is nothing to wait for.
    policies = {
        o["spec"]["policyName"]
        for o in of_kind(objects, "ValidatingAdmissionPolicyBinding")
        if "Deny" in o["spec"].get("validationActions", ["Deny"])
    }
    if any(name.endswith("-writes") for name in policies):

        async def writes_enforced() -> bool:
            probe = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": f"policy-probe-{uuid.uuid4().hex[:8]}"},
            }
            return await denied_by_policy(create(as_sa, probe, dry_run=True))

        await eventually(writes_enforced, 30, "the write policy to be enforced")
    if any(name.endswith("-pods") for name in policies):

        async def pods_enforced() -> bool:
            probe = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "policy-probe",
                    "namespace": namespace,
                    "annotations": {"salad.com/policy-probe": "x"},
                },
                "spec": {
                    "tolerations": [PROVIDER_TOLERATION],
                    "containers": [{"name": "probe", "image": "probe:1"}],
                },
            }
            return await denied_by_policy(create(admin, probe, dry_run=True))

        await eventually(pods_enforced, 30, "the pod policy to be enforced")


@asynccontextmanager
async def policies_in_force(
    admin: KubeClient, objects: Sequence[Manifest], namespace: str, as_sa: KubeClient
) -> AsyncIterator[None]:
    """The chart's admission policies created and enforced until the block ends."""
    policies = [o for o in objects if o["kind"] in POLICY_KINDS]
    try:
        for manifest in policies:
            await apply(admin, manifest)
        await wait_for_policies(admin, as_sa, namespace, policies)
        yield
    finally:
        await delete_all(admin, policies)


@asynccontextmanager
async def running_release(
    kube_api: ApiClient,
    kubeconfig: Path,
    namespace: str,
    values: dict[str, Any],
    work: Path,
    *,
    missing_keys: Collection[str] = (),
) -> AsyncIterator[Release]:
    admin = KubeClient(kube_api, node="test")
    name = f"r{uuid.uuid4().hex[:6]}"
    objects = render(values, release=name, namespace=namespace, kubeconfig=kubeconfig)
    service_account = one(objects, "ServiceAccount")["metadata"]["name"]
    rendered = [objects]
    try:
        for manifest in managed(objects):
            await create(admin, manifest)
        user, groups = service_account_identity(namespace, service_account)
        async with impersonating(kubeconfig, user, groups) as as_sa_api:
            as_sa = KubeClient(as_sa_api, node="test")

            async def authorized() -> bool:
                # RBAC reaches the authorizer through its informers: wait for it.
                try:
                    await as_sa.get("/api/v1/pods", {"limit": "1"})
                except KubeError as error:
                    if error.status != 403:
                        raise
                    return False
                return True

            await eventually(authorized, 10, "the chart's RBAC to take effect")
            await wait_for_policies(admin, as_sa, namespace, objects)
            config = ConfigMapDir(work / "config")
            keys_root = work / "keys"
            lay_out_keys(values, keys_root, missing_keys)
            config.write(mounted_projects_file(objects, keys_root))
            # As in the pod: the membership Leases live in the release namespace.
            async with running_supervisor(
                as_sa_api, config.path, managed_by=managed_by(objects), lease_namespace=namespace
            ) as supervisor:
                release = Release(
                    name=name,
                    namespace=namespace,
                    values=values,
                    objects=objects,
                    config=config,
                    keys_root=keys_root,
                    service_account=service_account,
                    supervisor=supervisor,
                    as_service_account=as_sa,
                    admin=admin,
                    kubeconfig=kubeconfig,
                )
                try:
                    yield release
                finally:
                    rendered.append(release.objects)
    finally:
        for entry in values["nodes"]:
            with suppress(KubeNotFound):
                await admin.delete(f"/api/v1/nodes/{entry['name']}")
        # What the test namespace's deletion does not take along.
        left = {
            identity(o): o
            for objects in rendered
            for o in managed(objects)
            if o["metadata"].get("namespace") != namespace
        }
        await delete_all(admin, list(left.values()))
