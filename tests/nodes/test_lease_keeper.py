"""The Lease keeper against a real API server: what its renewals send and keep."""

from __future__ import annotations

import uuid
from contextlib import suppress
from typing import Any

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeNotFound
from nodes.lease import LeaseKeeper, lease_path
from nodes.tenure import Tenure

pytestmark = pytest.mark.anyio


class RecordingKube(KubeClient):
    """A KubeClient that notes the body of every PUT it sends."""

    puts: list[dict[str, Any]]

    async def put(
        self, path: str, body: dict[str, Any], request_timeout: float | None = None
    ) -> dict[str, Any]:
        self.puts.append(body)
        return await super().put(path, body, request_timeout=request_timeout)


async def test_renewals_leave_out_managed_fields_and_the_server_keeps_them(
    kube_api: ApiClient,
) -> None:
    name = f"keeper-{uuid.uuid4().hex[:8]}"
    kube = RecordingKube(kube_api, node=name)
    kube.puts = []

    async def no_node() -> str:
        return ""

    keeper = LeaseKeeper(
        kube,
        name,
        tenure=Tenure(name, node_deadline=40.0),
        node_uid=lambda: "",
        ensure_node=no_node,
        identity="test",
        labels={"example.com/kept": "yes"},
    )
    try:
        async with anyio.create_task_group() as group:
            await group.start(keeper.run)
            created = await kube.get(lease_path(name))
            assert created["metadata"]["managedFields"], "the server records who wrote what"
            await keeper.renew_now()
            await keeper.renew_now()
            group.cancel_scope.cancel()
        renewed = await kube.get(lease_path(name))

        assert len(kube.puts) == 2
        assert all("managedFields" not in body["metadata"] for body in kube.puts)
        assert renewed["metadata"]["managedFields"], "left out of an update, they are kept"
        assert renewed["spec"]["holderIdentity"] == keeper.holder
        assert renewed["spec"]["renewTime"] > created["spec"]["renewTime"]
        assert renewed["metadata"]["labels"] == {"example.com/kept": "yes"}
    finally:
        with suppress(KubeNotFound):
            await kube.delete(lease_path(name))
