"""An API server that cannot be reached at start: one line, a summary, not a line per
node per retry; and "serving N nodes" only once they are registered."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.kube import KubeClient, KubeNotFound
from tests.controlplane.cluster import ControlPlane
from tests.nodes.harness import eventually
from tests.tcp_proxy import tcp_proxy

from .harness import ConfigMapDir, projects_yaml, simulator

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lines(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


async def test_an_api_server_away_at_start_is_said_once_and_nodes_start_when_it_answers(
    kube_api: ApiClient, control_plane: ControlPlane, tmp_path: Path
) -> None:
    admin = KubeClient(kube_api, node="test")
    names = [f"u{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    port = free_port()
    real = json.loads(control_plane.kubeconfig.read_text())
    server = urlsplit(real["clusters"][0]["cluster"]["server"])
    real["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(real))
    log = tmp_path / "salad-vk.log"
    async with simulator([f"{n}-p" for n in names]) as sim:
        config = ConfigMapDir(tmp_path / "config")
        config.write(projects_yaml(sim, tmp_path / "keys", {n: f"{n}-p" for n in names}))
        command = [sys.executable, "-m", "supervisor", "run", "--config", str(config.path)]
        command += ["--kubeconfig", str(kubeconfig), "--metrics-address", "127.0.0.1:0"]
        command += ["--log-format", "json"]
        with log.open("ab") as sink:
            process = await anyio.open_process(command, stdout=sink, stderr=sink)
        try:
            # Away for a while: the process says so once, and starts no node.
            async def said_unreachable() -> bool:
                return any(
                    "cannot reach the Kubernetes API server" in str(e["message"])
                    for e in lines(log)
                )

            await eventually(said_unreachable, 30, "the unreachable API server said")
            await anyio.sleep(6)
            during = lines(log)
            unreachable = [e for e in during if "reach the Kubernetes API" in str(e["message"])]
            assert len(unreachable) == 1, unreachable
            assert unreachable[0]["level"] == "error"
            assert f"https://127.0.0.1:{port}" in str(unreachable[0]["message"])
            assert not [e for e in during if e.get("node")], "no node tried on its own"
            assert not [e for e in during if "serving" in str(e["message"])]
            assert process.returncode is None

            # Back: every node registers, and only then is "serving 3 nodes" said.
            assert server.hostname is not None and server.port is not None
            async with tcp_proxy(str(server.hostname), server.port, port=port):

                async def serving() -> bool:
                    return any("serving 3 nodes" in str(e["message"]) for e in lines(log))

                await eventually(serving, 60, "serving 3 nodes")
                for name in names:
                    node = await admin.get(f"/api/v1/nodes/{name}")
                    assert node["metadata"]["uid"]
                after = [str(e["message"]) for e in lines(log)]
                answered = [m for m in after if "answers, after" in m]
                assert len(answered) == 1
                assert after.index(answered[0]) < next(
                    i for i, m in enumerate(after) if "serving 3 nodes" in m
                )
                process.terminate()
                with anyio.fail_after(30):
                    assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            for name in names:
                with suppress(KubeNotFound):
                    await admin.delete(f"/api/v1/nodes/{name}")
    assert "Traceback" not in log.read_text()
