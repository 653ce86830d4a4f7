"""Manifests sent to the real API server: paths found by discovery, CRDs, impersonation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.api_client import ApiClient
from multidict import CIMultiDict

from nodes.kube import KubeClient, KubeConflict, KubeNotFound

Manifest = dict[str, Any]


async def collection_path(kube: KubeClient, manifest: Manifest) -> str:
    """Where ``manifest`` is created, found in the API server's discovery documents, so
    a CRD's kinds resolve the same way as the built-in ones."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    resources = (await kube.get(base))["resources"]
    found = [r for r in resources if r["kind"] == kind and "/" not in r["name"]]
    assert found, f"the API server serves no {kind} in {api_version}"
    if not found[0]["namespaced"]:
        return f"{base}/{found[0]['name']}"
    namespace = manifest["metadata"].get("namespace")
    assert namespace, f"{kind} {manifest['metadata']['name']} names no namespace"
    return f"{base}/namespaces/{namespace}/{found[0]['name']}"


async def create(kube: KubeClient, manifest: Manifest, *, dry_run: bool = False) -> Manifest:
    """POST ``manifest``; fields the schema does not know are refused, not dropped."""
    params = {"fieldValidation": "Strict"}
    if dry_run:
        params["dryRun"] = "All"
    path = await collection_path(kube, manifest)
    return await kube.request("POST", path, params=params, body=manifest)


async def apply(kube: KubeClient, manifest: Manifest) -> Manifest:
    """Create ``manifest``, or replace the object of its name, as `helm upgrade` would."""
    try:
        return await create(kube, manifest)
    except KubeConflict:
        pass
    path = f"{await collection_path(kube, manifest)}/{manifest['metadata']['name']}"
    current = await kube.get(path)
    replacement = {
        **manifest,
        "metadata": {
            **manifest["metadata"],
            "resourceVersion": current["metadata"]["resourceVersion"],
        },
    }
    return await kube.request("PUT", path, params={"fieldValidation": "Strict"}, body=replacement)


async def delete_all(kube: KubeClient, manifests: Iterable[Manifest]) -> None:
    for manifest in manifests:
        path = await collection_path(kube, manifest)
        with suppress(KubeNotFound):
            await kube.delete(f"{path}/{manifest['metadata']['name']}")


async def ensure_crds(kube: KubeClient, crds: Sequence[Manifest], timeout: float = 30) -> None:
    """Create each CRD unless it exists; return once its kinds are served."""
    base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for crd in crds:
        with suppress(KubeConflict):
            await kube.post(base, crd)
    with anyio.fail_after(timeout):
        for crd in crds:
            spec = crd["spec"]
            while not await _served(kube, spec):
                await anyio.sleep(0.1)


async def _served(kube: KubeClient, spec: Manifest) -> bool:
    versions = [v["name"] for v in spec["versions"] if v.get("served", True)]
    try:
        found = await kube.get(f"/apis/{spec['group']}/{versions[0]}")
    except KubeNotFound:
        return False
    return any(r["kind"] == spec["names"]["kind"] for r in found.get("resources") or [])


async def admin_client(kubeconfig: Path) -> ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return ApiClient(configuration=configuration)


@asynccontextmanager
async def impersonating(
    kubeconfig: Path, user: str, groups: Sequence[str]
) -> AsyncIterator[ApiClient]:
    """An ``ApiClient`` whose every request acts as ``user`` in ``groups``.

    The admin's credentials authenticate; the ``Impersonate-*`` headers make the API
    server authorize each request as the impersonated identity instead, exactly as if
    that identity had sent it. The headers go on the HTTP session, because a group
    needs one ``Impersonate-Group`` header each and the client's own header dict holds
    one value per name.
    """
    headers: CIMultiDict[str] = CIMultiDict([("Impersonate-User", user)])
    for group in groups:
        headers.add("Impersonate-Group", group)
    async with await admin_client(kubeconfig) as api:
        rest = api.rest_client
        admin_session: aiohttp.ClientSession = rest.pool_manager
        rest.pool_manager = aiohttp.ClientSession(
            connector=admin_session.connector,
            connector_owner=False,
            headers=headers,
            read_bufsize=2**21,
        )
        try:
            yield api
        finally:
            await rest.pool_manager.close()
            rest.pool_manager = admin_session


def service_account_identity(namespace: str, name: str) -> tuple[str, list[str]]:
    """The user name and groups the API server gives a ServiceAccount's token."""
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    )
