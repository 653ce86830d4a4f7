"""What a request to the kubelet API is about, and what it takes to be allowed it.

Pure functions over the method, the path and one header. The authorization attributes
are the kubelet's (``pkg/kubelet/server/auth.go``): verb from the HTTP method,
resource ``nodes``, the node's name, and subresource ``stats`` for ``/stats/*``,
``metrics`` for ``/metrics/*``, ``log`` for ``/logs/*`` and ``proxy`` for everything
else, ``/containerLogs`` and ``/pods`` included.

One address serves every node of the process, so a request does not say which node
it meant. A pod's requests (logs, exec, ...) name the pod, which names its node. For
the rest, the API server's node proxy says it in ``X-Forwarded-Uri``
(``/api/v1/nodes/NODE/proxy/...``); a client talking to the port directly gets every
node it is allowed to see.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote

_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NODE_PROXY = re.compile(r"^/api/v1/nodes/(?P<id>[^/]+)/proxy(?:/.*)?$")


class Kind(enum.Enum):
    CONTAINER_LOGS = "containerLogs"
    PODS = "pods"
    HEALTHZ = "healthz"
    STATS_SUMMARY = "stats/summary"
    METRICS_RESOURCE = "metrics/resource"
    STREAMING = "streaming"
    """exec, attach, portForward, run: SaladCloud has no such API."""
    UNKNOWN = "other"


_STREAMING = {"exec": "exec", "attach": "attach", "portForward": "port-forward", "run": "run"}


@dataclass(frozen=True)
class Route:
    kind: Kind
    namespace: str = ""
    pod: str = ""
    container: str = ""
    action: str = ""
    """For STREAMING: what was asked (exec, attach, port-forward, run)."""
    problem: str = ""
    """For CONTAINER_LOGS: a part of the path is missing (the kubelet's wording)."""

    @property
    def pod_key(self) -> str:
        return f"{self.namespace}/{self.pod}"

    @property
    def metric_path(self) -> str:
        """A bounded label for metrics."""
        return self.action.replace("-", "") if self.kind is Kind.STREAMING else self.kind.value


def route(path: str) -> Route:
    """The route of ``path`` (already percent-decoded by the server)."""
    parts = path.strip("/").split("/")
    head = parts[0] if parts else ""
    if head == "containerLogs" and len(parts) <= 4:
        namespace, pod, container = ([*parts[1:], "", "", ""])[:3]
        missing = (
            "Missing podID." if not pod else
            "Missing container name." if not container else
            "Missing podNamespace." if not namespace else
            ""
        )  # fmt: skip
        return Route(Kind.CONTAINER_LOGS, namespace, pod, container, problem=missing)
    if head in _STREAMING:
        namespace, pod = ([*parts[1:], "", ""])[:2]
        container = parts[-1] if head != "portForward" and len(parts) >= 4 else ""
        return Route(Kind.STREAMING, namespace, pod, container, action=_STREAMING[head])
    simple = {
        "/pods": Kind.PODS,
        "/healthz": Kind.HEALTHZ,
        "/stats/summary": Kind.STATS_SUMMARY,
        "/metrics/resource": Kind.METRICS_RESOURCE,
    }
    return Route(simple.get("/" + "/".join(parts), Kind.UNKNOWN))


@dataclass(frozen=True)
class Attributes:
    """A SubjectAccessReview's resource attributes for one node."""

    verb: str
    subresource: str
    node: str
    """Empty: every node (the process serves none to name)."""

    def resource_attributes(self) -> dict[str, str]:
        attributes = {
            "verb": self.verb,
            "group": "",
            "version": "v1",
            "resource": "nodes",
            "subresource": self.subresource,
        }
        if self.node:
            attributes["name"] = self.node
        return attributes


def _is_subpath(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")


def subresource(path: str) -> str:
    if _is_subpath(path, "/stats"):
        return "stats"
    if _is_subpath(path, "/metrics"):
        return "metrics"
    if _is_subpath(path, "/logs"):
        return "log"
    return "proxy"


def attributes(method: str, path: str, node: str) -> Attributes:
    """The kubelet's authorization attributes of ``method path`` on ``node``; an HTTP
    method the kubelet has no verb for gets the empty verb, which nothing grants."""
    return Attributes(_VERBS.get(method.upper(), ""), subresource(path), node)


def forwarded_node(forwarded_uri: str | None) -> str | None:
    """The node an API server node-proxy request was for (``/api/v1/nodes/ID/proxy``;
    the ID may be ``NAME``, ``NAME:PORT`` or ``SCHEME:NAME:PORT``)."""
    if not forwarded_uri:
        return None
    found = _NODE_PROXY.match(forwarded_uri.split("?", 1)[0])
    if found is None:
        return None
    parts = unquote(found["id"]).split(":")
    name = parts[1] if len(parts) == 3 else parts[0]
    return name or None
