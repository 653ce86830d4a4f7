"""Who may use the kubelet API: the kubelet's webhook authentication and authorization."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

import httpx
import pytest
from kubernetes_asyncio.client.api_client import ApiClient

from .certs import Authority
from .harness import kubelet_rig

pytestmark = pytest.mark.anyio

PROXY = [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]
STATS = [{"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]}]
PODS_ONLY = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]


async def test_a_request_needs_credentials_and_the_right_for_its_path(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    node = f"ka{uuid.uuid4().hex[:5]}"
    async with kubelet_rig(kube_api, kubeconfig, namespace, tmp_path, {node: f"{node}-p"}) as rig:
        pod = await rig.pod(node)
        logs = f"{rig.url}/containerLogs/{namespace}/{pod['metadata']['name']}/main"
        stats = f"{rig.url}/stats/summary"
        proxy, stats_only, neither = (
            await rig.token("proxy", PROXY),
            await rig.token("stats", STATS),
            await rig.token("pods", PODS_ONLY),
        )
        reviewer = rig.running.supervisor.kubelet.reviewer

        async with httpx.AsyncClient(verify=False, timeout=30) as http:

            async def get(url: str, token: str | None = None) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return await http.get(url, headers=headers)

            anonymous = [await get(logs), await get(stats), await get(f"{rig.url}/healthz")]
            bogus = await get(logs, "not-a-token")
            refused = await get(logs, neither)
            allowed = await get(logs, proxy)
            summary = await get(stats, stats_only)
            not_logs = await get(logs, stats_only)
            reviews = reviewer.reviews
            again = [await get(logs, proxy) for _ in range(5)]
            cached = reviewer.reviews - reviews
            not_pods = await get(f"{rig.url}/pods", stats_only)
        metrics = {
            result: rig.running.sample("salad_vk_kubelet_authorizations_total", {"result": result})
            for result in ("unauthenticated", "denied", "allowed")
        }

    assert [r.status_code for r in anonymous] == [401, 401, 401]
    assert anonymous[0].text == "Unauthorized\n"
    assert bogus.status_code == 401
    assert refused.status_code == 403
    assert refused.text.startswith("Forbidden (user=system:serviceaccount:")
    assert "verb=get, resource=nodes, subresource(s)=[proxy]" in refused.text
    assert allowed.status_code == 200 and allowed.text.startswith("starting nginx:1.27")
    assert summary.status_code == 200
    assert summary.json()["node"]["nodeName"] == node
    assert not_logs.status_code == 403
    assert not_pods.status_code == 403, "/pods is nodes/proxy"
    assert [r.status_code for r in again] == [200] * 5
    assert cached == 0, "the token's review and the decision are cached"
    assert metrics == {"unauthenticated": 4.0, "denied": 3.0, "allowed": 7.0}


async def test_a_client_certificate_of_another_ca_gets_no_connection(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    node = f"kc{uuid.uuid4().hex[:5]}"
    stranger = Authority("stranger", tmp_path).issue("mallory")
    async with kubelet_rig(kube_api, kubeconfig, namespace, tmp_path, {node: f"{node}-p"}) as rig:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(str(stranger[0]), str(stranger[1]))
        async with httpx.AsyncClient(verify=context, timeout=30) as http:
            with pytest.raises(httpx.HTTPError):
                await http.get(f"{rig.url}/pods")
        ca = rig.running.supervisor.kubelet.tls.client_ca

    assert ca and "BEGIN CERTIFICATE" in ca, "the cluster's client CA was read"


async def test_a_node_proxy_request_is_answered_for_that_node_only(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """The API server authorizes its user for one node's proxy, then calls with its own
    certificate: what comes back must stay within that node, whatever the path names."""
    a, b = f"kb{uuid.uuid4().hex[:5]}", f"kc{uuid.uuid4().hex[:5]}"
    nodes = {a: f"{a}-p", b: f"{b}-p"}
    async with kubelet_rig(kube_api, kubeconfig, namespace, tmp_path, nodes) as rig:
        on_b = await rig.pod(b)
        only_a = [{**PROXY[0], "resourceNames": [a]}]
        token = await rig.token("proxy-a", only_a)
        logs = f"/containerLogs/{namespace}/{on_b['metadata']['name']}/main"

        async with httpx.AsyncClient(verify=False, timeout=30) as http:

            async def through(node: str, path: str) -> httpx.Response:
                headers = {
                    "Authorization": f"Bearer {token}",
                    "X-Forwarded-Uri": f"/api/v1/nodes/{node}/proxy{path}",
                }
                return await http.get(f"{rig.url}{path}", headers=headers)

            via_a = await through(a, logs)
            via_b = await through(b, logs)
            pods_a = await through(a, "/pods")
            unknown = await through("not-served-here", "/pods")

    assert via_a.status_code == 404, "B's pod is not A's to show"
    assert via_b.status_code == 403, "the token has no right on B"
    assert pods_a.status_code == 200
    assert {p["spec"]["nodeName"] for p in pods_a.json()["items"]} <= {a}
    assert unknown.status_code == 403, "no right there either, and never a widened answer"


async def test_a_scrape_of_the_shared_address_is_one_review_for_all_its_nodes(
    kube_api: ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """metrics-server asks each Node's address, and a replica's nodes share one: a
    request that names no node is one review (for all nodes), and the page is rendered
    once for the scrapes that come together."""
    a, b, c = (f"k{x}{uuid.uuid4().hex[:5]}" for x in "mno")
    nodes = {a: f"{a}-p", b: f"{b}-p", c: f"{c}-p"}
    metrics_rule = [{"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]}]
    async with kubelet_rig(kube_api, kubeconfig, namespace, tmp_path, nodes) as rig:
        await rig.pod(a)
        scraper = await rig.token("scraper", metrics_rule)
        one_node = await rig.token("one-node", [{**metrics_rule[0], "resourceNames": [a]}])
        reviewer = rig.running.supervisor.kubelet.reviewer
        async with httpx.AsyncClient(verify=False, timeout=30) as http:
            url = f"{rig.url}/metrics/resource"
            before = reviewer.reviews
            scrapes = [
                await http.get(url, headers={"Authorization": f"Bearer {scraper}"}) for _ in nodes
            ]
            reviews = reviewer.reviews - before
            narrow = await http.get(url, headers={"Authorization": f"Bearer {one_node}"})

    assert [r.status_code for r in scrapes] == [200] * 3
    assert len({r.content for r in scrapes}) == 1
    assert reviews == 2, "the token's review and one access review for all three nodes"
    assert narrow.status_code == 403, "rights on one node do not open the shared address"
