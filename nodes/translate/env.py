"""The container's environment, resolved the way the kubelet resolves it.

``envFrom`` first, then ``env`` in order, later entries overriding earlier ones;
``$(VAR)`` in a literal ``value`` expands against what is defined so far. The values
are resolved here because SaladCloud only takes literal strings: Secrets and
ConfigMaps are read (by the caller) and their values sent to SaladCloud.

Differences from the kubelet, all because the container runs on SaladCloud:

* no service-link variables (``KUBERNETES_SERVICE_HOST``, ``<SVC>_PORT``...): this
  cluster's Services are not reachable from there;
* ``status.podIP``/``status.podIPs`` are refused: SaladCloud does not tell the
  container's address, and a wrong one is worse than none;
* every final value must be a single line of 1 to 1000 characters, as the API
  demands: an empty value is refused, not dropped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nodes.translate.context import TranslationContext
from nodes.translate.expansion import expand, mapping_for
from nodes.translate.pod_json import obj, objs, strings, text
from nodes.translate.quantity import MIB, ceil_div, parse_quantity
from nodes.translate.references import ENV_SOURCES
from nodes.translate.refusal import (
    CREATE_CONTAINER_CONFIG_ERROR,
    INVALID_ENVIRONMENT_VARIABLE,
    UNSUPPORTED_POD_FEATURE,
    Problems,
)
from nodes.translate.resources import Allocation, Declared
from nodes.translate.spec_bounds import ENV_VALUE_MAX, check_text

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
"""Kubernetes' classic environment-variable name rule (``IsEnvVarName``)."""

_SUBSCRIPTED = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def static_environment(container: Mapping[str, Any]) -> dict[str, str]:
    """The literal ``env`` values only: what the kubelet expands exec probes with."""
    return {
        text(entry.get("name")): text(entry.get("value")) for entry in objs(container.get("env"))
    }


@dataclass(frozen=True)
class _Defined:
    value: str = dataclasses.field(repr=False)
    field: str
    what: str


class _Environment:
    """Variables in definition order; redefining moves a variable to its new place."""

    def __init__(self) -> None:
        self.defined: dict[str, _Defined] = {}

    def set(self, name: str, value: str, field: str, what: str) -> None:
        self.defined.pop(name, None)
        self.defined[name] = _Defined(value, field, what)

    def values(self) -> dict[str, str]:
        return {name: defined.value for name, defined in self.defined.items()}


def container_environment(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    path: str,
    *,
    ctx: TranslationContext,
    declared: Declared,
    allocation: Allocation,
    problems: Problems,
) -> dict[str, str]:
    """The final environment; values SaladCloud would reject are recorded as problems."""
    env = _Environment()
    namespace = text(obj(pod.get("metadata")).get("namespace"))

    for index, source in enumerate(objs(container.get("envFrom"))):
        field = f"{path}.envFrom[{index}]"
        prefix = text(source.get("prefix"))
        kinds = [(from_key, kind) for _, from_key, kind in ENV_SOURCES if from_key in source]
        if len(kinds) != 1:
            problems.add(
                UNSUPPORTED_POD_FEATURE, field, "needs exactly one of configMapRef, secretRef"
            )
            continue
        from_key, kind = kinds[0]
        ref = obj(source[from_key])
        data = _stored(ref, kind, f"{field}.{from_key}", ctx, problems)
        if data is None:
            continue
        name = text(ref.get("name"))
        for key in sorted(data):
            variable = prefix + key
            # The kubelet skips keys that are not valid names (with an event); so do we.
            if ENV_NAME.fullmatch(variable):
                env.set(variable, data[key], field, f"key {key!r} of {kind} {name!r}")

    for index, entry in enumerate(objs(container.get("env"))):
        field = f"{path}.env[{index}]"
        name = text(entry.get("name"))
        if not ENV_NAME.fullmatch(name):
            problems.add(
                INVALID_ENVIRONMENT_VARIABLE,
                f"{field}.name",
                f"{name!r} is not a valid environment variable name "
                "(letters, digits, '_', '-', '.'; not starting with a digit)",
            )
            continue
        value_from = entry.get("valueFrom")
        if isinstance(value_from, Mapping):
            resolved = _value_from(
                value_from,
                f"{field}.valueFrom",
                pod=pod,
                container=container,
                namespace=namespace,
                ctx=ctx,
                declared=declared,
                allocation=allocation,
                problems=problems,
            )
            if resolved is not None:
                env.set(name, resolved, f"{field}.valueFrom", f"the value of {name}")
            continue
        value = text(entry.get("value"))
        if value:
            value = expand(value, mapping_for(env.values()))
        env.set(name, value, f"{field}.value", f"the value of {name}")

    for defined in env.defined.values():
        check_text(
            defined.value,
            field=defined.field,
            what=defined.what,
            reason=INVALID_ENVIRONMENT_VARIABLE,
            problems=problems,
            maximum=ENV_VALUE_MAX,
        )
    return env.values()


def _value_from(
    value_from: Mapping[str, Any],
    field: str,
    *,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    namespace: str,
    ctx: TranslationContext,
    declared: Declared,
    allocation: Allocation,
    problems: Problems,
) -> str | None:
    """The value of one ``valueFrom``, or ``None`` when it is skipped or a problem."""
    for key_ref, _, kind in ENV_SOURCES:
        if key_ref in value_from:
            ref = obj(value_from[key_ref])
            data = _stored(ref, kind, f"{field}.{key_ref}", ctx, problems)
            key = text(ref.get("key"))
            if data is not None and key not in data and ref.get("optional") is not True:
                problems.add(
                    CREATE_CONTAINER_CONFIG_ERROR,
                    f"{field}.{key_ref}",
                    f"couldn't find key {key} in {kind} {namespace}/{text(ref.get('name'))}",
                    permanent=False,
                )
            return None if data is None else data.get(key)
    if "fieldRef" in value_from:
        return _field_ref(obj(value_from["fieldRef"]), f"{field}.fieldRef", pod, ctx, problems)
    if "resourceFieldRef" in value_from:
        return _resource_field_ref(
            obj(value_from["resourceFieldRef"]),
            f"{field}.resourceFieldRef",
            container=container,
            declared=declared,
            allocation=allocation,
            problems=problems,
        )
    problems.add(
        UNSUPPORTED_POD_FEATURE,
        field,
        "only configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef are supported",
    )
    return None


def _stored(
    ref: Mapping[str, Any],
    kind: str,
    field: str,
    ctx: TranslationContext,
    problems: Problems,
) -> Mapping[str, str] | None:
    """The data of the ``kind`` (ConfigMap or Secret) ``ref`` names, if it was found; a
    missing one is a problem unless ``ref`` is optional, as for the kubelet."""
    name = text(ref.get("name"))
    data = (ctx.config_maps if kind == "ConfigMap" else ctx.secrets).get(name)
    if data is None and ref.get("optional") is not True:
        problems.add(
            CREATE_CONTAINER_CONFIG_ERROR,
            field,
            f'{kind.lower()} "{name}" not found',
            permanent=False,
        )
    return data


def _field_ref(
    ref: Mapping[str, Any],
    field: str,
    pod: Mapping[str, Any],
    ctx: TranslationContext,
    problems: Problems,
) -> str | None:
    metadata, spec = obj(pod.get("metadata")), obj(pod.get("spec"))
    path = text(ref.get("fieldPath"))
    simple = {
        "metadata.name": text(metadata.get("name")),
        "metadata.namespace": text(metadata.get("namespace")),
        "metadata.uid": text(metadata.get("uid")),
        "spec.nodeName": text(spec.get("nodeName")) or ctx.node_name,
        "spec.serviceAccountName": text(spec.get("serviceAccountName")),
        "status.hostIP": ctx.node_ip,
        "status.hostIPs": ctx.node_ip,
    }
    if path in simple:
        return simple[path]
    subscripted = _SUBSCRIPTED.fullmatch(path)
    if subscripted:
        return strings(metadata.get(subscripted[1])).get(subscripted[2], "")
    if path in ("status.podIP", "status.podIPs"):
        problems.add(
            UNSUPPORTED_POD_FEATURE,
            f"{field}.fieldPath",
            f"{path} is not known: SaladCloud does not report the container's IP address",
        )
        return None
    problems.add(
        INVALID_ENVIRONMENT_VARIABLE,
        f"{field}.fieldPath",
        f"{path!r} is not a field the downward API offers to environment variables",
    )
    return None


def _resource_field_ref(
    ref: Mapping[str, Any],
    field: str,
    *,
    container: Mapping[str, Any],
    declared: Declared,
    allocation: Allocation,
    problems: Problems,
) -> str | None:
    """``limits.*``/``requests.*`` with a divisor, rounded up like the kubelet.

    An unset limit reads as what SaladCloud allocates (the kubelet uses the node's
    allocatable, and the SaladCloud instance is this container's node); an unset
    request reads as 0, as in Kubernetes.
    """
    owner = text(ref.get("containerName"))
    if owner and owner != text(container.get("name")):
        problems.add(
            INVALID_ENVIRONMENT_VARIABLE,
            f"{field}.containerName",
            f"{owner!r} is not this container",
        )
        return None
    resource = text(ref.get("resource"))
    kind, _, name = resource.partition(".")
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor is None or divisor < 0:
        problems.add(INVALID_ENVIRONMENT_VARIABLE, f"{field}.divisor", "is not a positive quantity")
        return None
    if divisor == 0:
        divisor = Fraction(1)  # the kubelet reads a zero divisor as 1
    allocated = {
        "cpu": allocation.cpu,
        "memory": allocation.memory_mb * MIB,
        "ephemeral-storage": allocation.storage_bytes,
    }
    if kind not in ("limits", "requests") or name not in allocated:
        problems.add(
            INVALID_ENVIRONMENT_VARIABLE,
            f"{field}.resource",
            f"{resource!r} is not one of limits.cpu, limits.memory, limits.ephemeral-storage, "
            "requests.cpu, requests.memory, requests.ephemeral-storage",
        )
        return None
    source = declared.limits if kind == "limits" else declared.requests
    amount = source.get(name)
    if amount is None and kind == "limits":
        fallback = allocated[name]
        if fallback is None:
            problems.add(
                INVALID_ENVIRONMENT_VARIABLE,
                f"{field}.resource",
                "limits.ephemeral-storage is not set, and SaladCloud does not say how much "
                "storage it gives by default",
            )
            return None
        return str(ceil_div(Fraction(fallback), divisor))
    return str(ceil_div(Fraction(0) if amount is None else amount, divisor))
