"""The Kubernetes client reads the environment once, when it is built.

kubernetes-asyncio builds its aiohttp session with ``trust_env=True``, which reads
``.netrc`` and the proxy variables on a worker thread for every request: 6 % of the
CPU at a thousand nodes (py-spy, issue 12). The proxy is resolved here once, from the
environment given, unless the kubeconfig named one, and the client gets a session
that never consults the environment again.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.client.api_client import ApiClient

from nodes.proxies import EnvironmentProxies

_READ_BUFFER = 2**21
"""kubernetes-asyncio's own read buffer: watch events of large objects need it."""


def resolve_proxy_once(configuration: Configuration, environ: Mapping[str, str]) -> None:
    """Set the proxy for the API server from ``environ`` (``HTTPS_PROXY``, ``NO_PROXY``,
    ...) unless the kubeconfig set one."""
    if not configuration.proxy and configuration.host:
        configuration.proxy = EnvironmentProxies(environ).for_url(configuration.host)


def without_environment(api: ApiClient) -> ApiClient:
    """``api`` with a session that does not trust the environment; the connection pool
    (and its limit) is the same."""
    original = api.rest_client.pool_manager
    connector = original.connector
    original.detach()
    api.rest_client.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=_READ_BUFFER
    )
    return api
