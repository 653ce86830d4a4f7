"""Kubernetes probes as SaladCloud probes: same mechanisms, numbers clamped to the API.

Absent numbers take the kubelet's defaults (not SaladCloud's, which differ), so a
probe behaves as the pod's author expects. Numbers outside SaladCloud's bounds are
clamped rather than refused: a longer Kubernetes timeout or delay becomes the longest
SaladCloud allows. HTTP probes send the headers the kubelet sends (``User-Agent:
kube-probe/<major>.<minor>``, ``Accept: */*``) unless the pod sets its own; the API
also requires at least one header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from nodes.saladcloud.models import HttpHeader, Probe, ProbeExec, ProbeGrpc, ProbeHttp, ProbeTcp
from nodes.translate.expansion import expand, mapping_for
from nodes.translate.pod_json import container_port, integer, items, obj, objs, text
from nodes.translate.refusal import INVALID_PROBE, UNSUPPORTED_POD_FEATURE, Problems
from nodes.translate.spec_bounds import (
    COMMAND_ITEMS_MAX,
    PORT_MAX,
    PORT_MIN,
    PROBE_EXEC_ITEM_MAX,
    PROBE_GRPC_SERVICE_MAX,
    PROBE_HEADER_NAME_MAX,
    PROBE_HEADER_VALUE_MAX,
    PROBE_HEADERS_MAX,
    PROBE_PATH_MAX,
    check_text,
)

PROBES = (
    ("livenessProbe", "liveness_probe"),
    ("readinessProbe", "readiness_probe"),
    ("startupProbe", "startup_probe"),
)
"""Kubernetes field, create-body field; in the order of the Container type."""

# Kubernetes name -> (request name, kubelet default, SaladCloud minimum, maximum)
_NUMBERS = {
    "initialDelaySeconds": ("initial_delay_seconds", 0, 0, 1200),
    "periodSeconds": ("period_seconds", 10, 1, 120),
    "timeoutSeconds": ("timeout_seconds", 1, 1, 60),
    "successThreshold": ("success_threshold", 1, 1, 10),
    "failureThreshold": ("failure_threshold", 3, 1, 20),
}
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def probe_user_agent(kubernetes_version: str) -> str:
    """``kube-probe/1.31`` for ``v1.31.2``, as the kubelet identifies its probes."""
    found = _VERSION.match(kubernetes_version.strip())
    return f"kube-probe/{found[1]}.{found[2]}" if found else "kube-probe"


def container_probe(
    container: Mapping[str, Any],
    kind: str,
    path: str,
    *,
    user_agent: str,
    static_environment: Mapping[str, str],
    problems: Problems,
) -> Probe | None:
    """The SaladCloud probe for ``container[kind]``, or ``None`` when there is none."""
    spec = container.get(kind)
    if not isinstance(spec, Mapping):
        return None
    field = f"{path}.{kind}"
    handlers = [name for name in _HANDLERS if isinstance(spec.get(name), Mapping)]
    if len(handlers) != 1:
        problems.add(INVALID_PROBE, field, "needs exactly one of exec, httpGet, tcpSocket, grpc")
        return None
    handler = handlers[0]
    body = obj(spec[handler])
    handler_field = f"{field}.{handler}"
    mechanism: dict[str, Any] | None
    if handler == "exec":
        mechanism = _exec(body, handler_field, static_environment, problems)
    elif handler == "httpGet":
        mechanism = _http(body, handler_field, container, user_agent, problems)
    elif handler == "tcpSocket":
        mechanism = _tcp(body, handler_field, container, problems)
    else:
        mechanism = _grpc(body, handler_field, problems)
    if mechanism is None:
        return None
    numbers: dict[str, int] = {}
    for name, (request_name, default, low, high) in _NUMBERS.items():
        value = integer(spec.get(name))
        numbers[request_name] = min(high, max(low, default if value is None else value))
    return Probe.model_validate({**numbers, **mechanism})


def _port(
    body: Mapping[str, Any], field: str, container: Mapping[str, Any], problems: Problems
) -> int | None:
    raw = body.get("port")
    port = container_port(container, raw)
    if port is None:
        problems.add(
            INVALID_PROBE,
            f"{field}.port",
            f"{raw!r} is neither a port number (1..65535) nor the name of a container port",
        )
        return None
    return port


def _no_host(body: Mapping[str, Any], field: str, problems: Problems) -> bool:
    if body.get("host"):
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            f"{field}.host",
            "SaladCloud probes the container itself and cannot probe another host",
        )
        return False
    return True


def _exec(
    body: Mapping[str, Any], field: str, environment: Mapping[str, str], problems: Problems
) -> dict[str, Any] | None:
    # The kubelet expands exec probes with the literal env values only.
    lookup = mapping_for(environment)
    command = [expand(text(part), lookup) for part in items(body.get("command"))]
    if not command or len(command) > COMMAND_ITEMS_MAX:
        problems.add(
            INVALID_PROBE,
            f"{field}.command",
            f"has {len(command)} elements; SaladCloud needs 1 to {COMMAND_ITEMS_MAX}",
        )
        return None
    for index, part in enumerate(command):
        if not check_text(
            part,
            field=f"{field}.command[{index}]",
            what="the element",
            reason=INVALID_PROBE,
            problems=problems,
            maximum=PROBE_EXEC_ITEM_MAX,
        ):
            return None
    return {"exec": ProbeExec(command=command)}


def _http(
    body: Mapping[str, Any],
    field: str,
    container: Mapping[str, Any],
    user_agent: str,
    problems: Problems,
) -> dict[str, Any] | None:
    port = _port(body, field, container, problems)
    host_ok = _no_host(body, field, problems)
    path = text(body.get("path")) or "/"
    if not path.startswith("/"):
        path = "/" + path
    path_ok = check_text(
        path,
        field=f"{field}.path",
        what="the path",
        reason=INVALID_PROBE,
        problems=problems,
        maximum=PROBE_PATH_MAX,
    )
    raw_scheme = text(body.get("scheme"), "HTTP")
    scheme: Literal["http", "https"] = "https" if raw_scheme.upper() == "HTTPS" else "http"
    if raw_scheme.upper() not in ("HTTP", "HTTPS"):
        problems.add(INVALID_PROBE, f"{field}.scheme", f"{raw_scheme!r} is neither HTTP nor HTTPS")
        return None
    headers = _headers(objs(body.get("httpHeaders")), f"{field}.httpHeaders", user_agent, problems)
    if port is None or headers is None or not host_ok or not path_ok:
        return None
    return {"http": ProbeHttp(path=path, port=port, scheme=scheme, headers=headers)}


def _headers(
    given: list[Mapping[str, Any]], field: str, user_agent: str, problems: Problems
) -> list[HttpHeader] | None:
    headers: list[HttpHeader] = []
    for index, header in enumerate(given):
        name, value = text(header.get("name")), text(header.get("value"))
        if name.lower() == "accept" and not value:
            continue  # the kubelet reads an empty Accept as "send no Accept header"
        ok = check_text(
            name,
            field=f"{field}[{index}].name",
            what="the header name",
            reason=INVALID_PROBE,
            problems=problems,
            maximum=PROBE_HEADER_NAME_MAX,
        ) and check_text(
            value,
            field=f"{field}[{index}].value",
            what=f"the value of header {name!r}",
            reason=INVALID_PROBE,
            problems=problems,
            maximum=PROBE_HEADER_VALUE_MAX,
        )
        if not ok:
            return None
        headers.append(HttpHeader(name=name, value=value))
    named = {text(header.get("name")).lower() for header in given}
    if "user-agent" not in named:
        headers.append(HttpHeader(name="User-Agent", value=user_agent))
    if "accept" not in named:
        headers.append(HttpHeader(name="Accept", value="*/*"))
    if len(headers) > PROBE_HEADERS_MAX:
        problems.add(
            INVALID_PROBE,
            field,
            f"{len(headers)} headers with the kubelet's defaults; SaladCloud accepts at most "
            f"{PROBE_HEADERS_MAX}",
        )
        return None
    return headers


def _tcp(
    body: Mapping[str, Any], field: str, container: Mapping[str, Any], problems: Problems
) -> dict[str, Any] | None:
    port = _port(body, field, container, problems)
    if not _no_host(body, field, problems) or port is None:
        return None
    return {"tcp": ProbeTcp(port=port)}


def _grpc(body: Mapping[str, Any], field: str, problems: Problems) -> dict[str, Any] | None:
    port = integer(body.get("port"))
    if port is None or not PORT_MIN <= port <= PORT_MAX:
        problems.add(INVALID_PROBE, f"{field}.port", f"{body.get('port')!r} is not a port number")
        return None
    service = text(body.get("service"))
    if not check_text(
        service,
        field=f"{field}.service",
        what="the service",
        reason=INVALID_PROBE,
        problems=problems,
        maximum=PROBE_GRPC_SERVICE_MAX,
        minimum=0,
    ):
        return None
    return {"grpc": ProbeGrpc(port=port, service=service)}
