"""SIGTERM ends the process within the shutdown grace plus a few seconds, whatever is
stuck: an event loop that never yields, a Kubernetes API that never answers, or a
SaladCloud that takes a create and never answers it."""

from __future__ import annotations

import signal
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
import yaml
from aiohttp import web
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient
from tests.controlplane.cluster import ControlPlane
from tests.nodes.harness import deployment, eventually

from .harness import salad_vk_run

pytestmark = pytest.mark.anyio

GRACE = 2.0
GRACE_FLAG = ("--shutdown-grace-seconds", str(GRACE))
MARGIN = 5.0
"""What the process may take past the grace, as promised: the grace plus 5 s."""


async def run_until_signalled(script: str) -> tuple[int, float, str]:
    """Run ``script``; once it prints ``ready``, SIGTERM it. (exit code, seconds from
    the signal to the exit, output)."""
    process = await anyio.open_process([sys.executable, "-c", textwrap.dedent(script)])
    assert process.stdout is not None
    try:
        with anyio.fail_after(30):
            seen = b""
            while b"ready" not in seen:
                seen += await process.stdout.receive()
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            code = await process.wait()
        return code, time.monotonic() - signalled, seen.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_signal_cancels_the_serving_scope_and_the_process_exits_cleanly() -> None:
    code, took, _ = await run_until_signalled(
        """
        import anyio
        from supervisor.shutdown import StopSignals

        async def main():
            with StopSignals(deadline=30) as stop, stop.scope:
                print("ready", flush=True)
                await anyio.sleep_forever()
            assert stop.scope.cancelled_caught

        anyio.run(main)
        """
    )
    assert code == 0
    assert took < 10


async def test_a_loop_that_never_yields_is_ended_at_the_deadline_as_killed_by_sigterm() -> None:
    code, took, _ = await run_until_signalled(
        """
        import time
        import anyio
        from supervisor.shutdown import StopSignals

        async def main():
            with StopSignals(deadline=1.0) as stop, stop.scope:
                print("ready", flush=True)
                time.sleep(60)  # the loop never gets to run the cancellation

        anyio.run(main)
        """
    )
    assert code == 128 + signal.SIGTERM
    assert took < 1.0 + MARGIN


def write_projects(folder: Path, api_url: str, node: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "key").write_text("sk-shutdown-test-3f9a1c")
    entry = {
        "name": node,
        "organization": "acme",
        "project": "stalled",
        "apiKeyFile": str(folder / "key"),
    }
    path = folder / "projects.yaml"
    path.write_text(yaml.safe_dump({"saladApiUrl": api_url, "nodes": [entry]}))
    return path


def kubeconfig_to(folder: Path, server: str) -> Path:
    path = folder / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


async def sigterm(process: anyio.abc.Process) -> tuple[int, float]:
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    with anyio.fail_after(60):
        code = await process.wait()
    return code, time.monotonic() - signalled


async def test_sigterm_while_the_kubernetes_api_accepts_and_never_answers(
    tmp_path: Path,
) -> None:
    connected = anyio.Event()
    held: list[anyio.abc.SocketStream] = []

    async def never_answer(stream: anyio.abc.SocketStream) -> None:
        held.append(stream)
        connected.set()
        await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    config = write_projects(tmp_path, "http://127.0.0.1:9/api/public", "stalled-api")
    log = tmp_path / "salad-vk.log"
    async with anyio.create_task_group() as serving:
        serving.start_soon(listener.serve, never_answer)
        kubeconfig = kubeconfig_to(tmp_path, f"http://127.0.0.1:{port}")
        async with salad_vk_run(config, kubeconfig, log, *GRACE_FLAG) as process:
            with anyio.fail_after(60):
                await connected.wait()  # start-up now waits on the silent API server
            code, took = await sigterm(process)
        serving.cancel_scope.cancel()
    assert code == 0, log.read_text()
    assert took < GRACE + MARGIN


class StalledSaladCloud:
    """Answers lists with nothing and takes every create without ever answering it."""

    def __init__(self) -> None:
        self.creates = 0

    async def list_groups(self, _: web.Request) -> web.Response:
        return web.json_response({"items": []})

    async def create_group(self, _: web.Request) -> web.Response:
        self.creates += 1
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        containers = "/api/public/organizations/{org}/projects/{project}/containers"
        app.router.add_get(containers, self.list_groups)
        app.router.add_post(containers, self.create_group)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/public"
        finally:
            await runner.cleanup()


@pytest.mark.controlplane
async def test_sigterm_with_a_create_stuck_in_a_stalled_saladcloud_pool(
    kube_api: ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    node = f"stall-{uuid.uuid4().hex[:6]}"
    salad = StalledSaladCloud()
    kube = KubeClient(kube_api, node="test")
    log = tmp_path / "salad-vk.log"
    async with salad.serving() as api_url:
        config = write_projects(tmp_path, api_url, node)
        async with salad_vk_run(config, control_plane.kubeconfig, log, *GRACE_FLAG) as process:
            await kube.post(
                f"/apis/apps/v1/namespaces/{namespace}/deployments",
                deployment("stuck", node, 3),
            )

            async def creates_in_flight() -> bool:
                return salad.creates >= 3

            await eventually(creates_in_flight, 60, "three creates sent and unanswered")
            code, took = await sigterm(process)
    await kube.delete(f"/api/v1/nodes/{node}")
    assert code == 0, log.read_text()
    # The creates were sent: they get their grace (their outcome could still be
    # known), and not a second more than the promise.
    assert GRACE - 0.5 < took < GRACE + MARGIN, log.read_text()
