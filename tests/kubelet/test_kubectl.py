"""kubectl against the nodes' kubelet API, through the real API server."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import anyio
import pytest
from kubernetes_asyncio.client.api_client import ApiClient
from prometheus_client.parser import text_string_to_metric_families

from nodes.saladcloud.simulator import WrittenLine

from .harness import FOLLOW_INTERVAL, kubelet_rig

pytestmark = pytest.mark.anyio


def names(prefix: str, count: int) -> dict[str, str]:
    """``count`` node names, each with a project of its own."""
    return {f"{prefix}-{i}": f"{prefix}-p{i}" for i in range(count)}


def stamped(line: WrittenLine) -> str:
    """The line as ``kubectl logs --timestamps`` shows it (nine fraction digits)."""
    return f"{line.time:%Y-%m-%dT%H:%M:%S.%f}000Z {line.text}"


async def test_kubectl_logs_prints_what_the_simulator_wrote_for_the_pod_and_nothing_else(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    nodes = names(f"kl{uuid.uuid4().hex[:5]}", 2)
    node_a, node_b = nodes
    async with kubelet_rig(
        kube_api, kubeconfig, namespace, tmp_path, nodes, simulator_options={"log-rate": 4}
    ) as rig:
        first, second, elsewhere = (
            await rig.pod(node_a),
            await rig.pod(node_a),
            await rig.pod(node_b),
        )
        await anyio.sleep(2.0)
        await rig.settle_output(lag=0.5)
        pods = (first, second, elsewhere)
        written = {pod["metadata"]["name"]: rig.written(pod) for pod in pods}
        logs = {}
        for pod in pods:
            code, out, err = await rig.kubectl("logs", "-n", namespace, pod["metadata"]["name"])
            assert code == 0, err
            logs[pod["metadata"]["name"]] = out
        name = first["metadata"]["name"]
        tail = await rig.kubectl("logs", "-n", namespace, name, "--tail=5")
        times = await rig.kubectl("logs", "-n", namespace, name, "--timestamps")
        head = await rig.kubectl("logs", "-n", namespace, name, "--limit-bytes=50")
        rig.write(first, ["before"], lag=0)
        await anyio.sleep(3.0)
        rig.write(first, ["after"], lag=0)
        await anyio.sleep(0.2)
        since = await rig.kubectl("logs", "-n", namespace, name, "--since=2s")

    for pod_name, lines in written.items():
        assert logs[pod_name].splitlines() == [line.text for line in lines], pod_name
    mine = [line.text for line in written[name]]
    assert len([text for text in mine if text.startswith("line ")]) >= 4, "written steadily"
    others = {text for other in pods[1:] for text in logs[other["metadata"]["name"]].splitlines()}
    assert not set(mine) & others - {"starting nginx:1.27"}, "no line of another pod's"
    assert tail[1].splitlines() == mine[-5:]
    assert times[1].splitlines() == [stamped(line) for line in written[name]]
    assert head[1] == logs[name][:50]
    assert since[1].splitlines() == ["after"]


async def test_kubectl_logs_follow_shows_new_lines_and_stops_polling_on_ctrl_c(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    nodes = names(f"kf{uuid.uuid4().hex[:5]}", 1)
    async with kubelet_rig(
        kube_api, kubeconfig, namespace, tmp_path, nodes, simulator_options={"log-rate": 0}
    ) as rig:
        pod = await rig.pod(next(iter(nodes)))
        name = pod["metadata"]["name"]

        def log_queries() -> int:
            return sum(1 for r in rig.sim.requests() if r.path.endswith("/log-entries"))

        async with rig.kubectl.following("logs", "-f", "-n", namespace, name) as followed:
            await followed.wait_for("starting nginx:1.27", timeout=20)
            rig.write(pod, ["hello from the container"])
            latency = await followed.wait_for("hello from the container", FOLLOW_INTERVAL + 2.0)
            before = log_queries()
            await anyio.sleep(3.0)
            during = log_queries() - before
        await anyio.sleep(FOLLOW_INTERVAL)
        before = log_queries()
        await anyio.sleep(3.0)
        after = log_queries() - before
        followers = rig.running.sample("salad_vk_kubelet_log_followers")

    assert latency <= FOLLOW_INTERVAL + 2.0
    assert during >= 2, "following polls SaladCloud"
    assert after == 0, "Ctrl-C stops the polling"
    assert followers == 0


async def test_following_a_steady_log_loses_and_repeats_no_line(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    nodes = names(f"ks{uuid.uuid4().hex[:5]}", 1)
    options = {"log-rate": 20, "log-lag": 1.5}
    async with kubelet_rig(
        kube_api,
        kubeconfig,
        namespace,
        tmp_path,
        nodes,
        simulator_options=options,
        kubelet_follow_interval_seconds=0.5,
    ) as rig:
        pod = await rig.pod(next(iter(nodes)))
        async with rig.kubectl.following(
            "logs", "-f", "-n", namespace, pod["metadata"]["name"]
        ) as followed:
            await anyio.sleep(6.0)
            rig.write(pod, [f"burst {n}" for n in range(250)])  # more than a page per poll
            await anyio.sleep(6.0)
            await rig.settle_output(lag=1.5)
            await anyio.sleep(2.0)  # two more polls
        written = [line.text for line in rig.written(pod)]

    assert len(written) > 250 + 150
    assert Counter(followed.texts) == Counter(written), "no line lost, none repeated"


async def test_exec_and_port_forward_say_saladcloud_has_no_such_api(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    nodes = names(f"kx{uuid.uuid4().hex[:5]}", 1)
    async with kubelet_rig(kube_api, kubeconfig, namespace, tmp_path, nodes) as rig:
        pod = await rig.pod(next(iter(nodes)))
        name = pod["metadata"]["name"]
        execute = await rig.kubectl("exec", "-n", namespace, name, "--", "ls")
        forward = await rig.kubectl("port-forward", "-n", namespace, name, ":80", timeout=30)
        attach = await rig.kubectl("attach", "-n", namespace, name, timeout=30)

    assert execute[0] != 0
    assert "SaladCloud has no API to run a command in a container (kubectl exec)" in execute[2]
    assert forward[0] != 0
    assert "SaladCloud has no API to forward a port to a pod" in forward[2]
    assert attach[0] != 0
    assert "SaladCloud has no API to attach to a running container" in attach[2]


async def test_the_node_proxy_lists_the_nodes_pods_and_its_stats_summary(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    nodes = names(f"kp{uuid.uuid4().hex[:5]}", 2)
    node_a, node_b = nodes
    async with kubelet_rig(kube_api, kubeconfig, namespace, tmp_path, nodes) as rig:
        mine = await rig.pod(node_a)
        theirs = await rig.pod(node_b)
        pods = await rig.kubectl("get", "--raw", f"/api/v1/nodes/{node_a}/proxy/pods")
        summary = await rig.kubectl("get", "--raw", f"/api/v1/nodes/{node_a}/proxy/stats/summary")
        metrics = await rig.kubectl(
            "get", "--raw", f"/api/v1/nodes/{node_b}/proxy/metrics/resource"
        )
        healthz = await rig.kubectl("get", "--raw", f"/api/v1/nodes/{node_b}/proxy/healthz")
        node = await rig.kube.get(f"/api/v1/nodes/{node_a}")

    pod_list = json.loads(pods[1])
    assert (pod_list["kind"], pod_list["apiVersion"]) == ("PodList", "v1")
    assert [p["metadata"]["name"] for p in pod_list["items"]] == [mine["metadata"]["name"]]
    document = json.loads(summary[1])
    assert document["node"]["nodeName"] == node_a
    [stats] = document["pods"]
    assert stats["podRef"] == {
        "name": mine["metadata"]["name"],
        "namespace": namespace,
        "uid": mine["metadata"]["uid"],
    }
    assert stats["containers"][0]["name"] == "main" and stats["startTime"]
    families = {f.name: f for f in text_string_to_metric_families(metrics[1])}
    [started] = families["container_start_time_seconds"].samples
    assert started.labels["pod"] == theirs["metadata"]["name"]
    assert healthz[1] == "ok\n"
    assert node["status"]["addresses"] == [{"type": "InternalIP", "address": rig.address}]
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == rig.port, (
        "the port the listener really has (it was asked for port 0)"
    )
