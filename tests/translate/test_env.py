from typing import Any

import pytest

from nodes.translate import (
    CREATE_CONTAINER_CONFIG_ERROR,
    INVALID_ENVIRONMENT_VARIABLE,
    UNSUPPORTED_POD_FEATURE,
)
from tests.translate.pods import (
    CONTAINER,
    NODE_IP,
    NODE_NAME,
    UID,
    create_body,
    make_context,
    make_pod,
    refusal_of,
)

SECRET_VALUE = "s3cr3t-v@lue"
SECRETS = {"db": {"password": SECRET_VALUE, "user": "app"}, "empty": {"blank": ""}}
CONFIG_MAPS = {
    "settings": {"LOG_LEVEL": "debug", "MODE": "fast", "1BAD": "skipped", "dotted.key": "ok"},
    "greeting": {"text": "hello"},
}


def env_of(container: dict[str, Any], **pod_args: Any) -> dict[str, str]:
    pod = make_pod(container=container, **pod_args)
    body = create_body(pod, make_context(secrets=SECRETS, config_maps=CONFIG_MAPS))
    variables: dict[str, str] = body["container"].get("environment_variables", {})
    return variables


def literal(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def value_from(name: str, source: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "valueFrom": source}


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param([literal("A", "1")], {"A": "1"}, id="literal"),
        pytest.param(
            [literal("A", "x"), literal("B", "$(A)-y")],
            {"A": "x", "B": "x-y"},
            id="expands-earlier",
        ),
        pytest.param(
            [literal("B", "$(A)-y"), literal("A", "x")],
            {"B": "$(A)-y", "A": "x"},
            id="later-not-yet-defined",
        ),
        pytest.param([literal("A", "$$(HOME)")], {"A": "$(HOME)"}, id="escaped-reference"),
        pytest.param([literal("A", "1"), literal("A", "2")], {"A": "2"}, id="later-overrides"),
        pytest.param(
            [literal("A", ""), literal("A", "filled")], {"A": "filled"}, id="override-fixes-empty"
        ),
        pytest.param(
            [value_from("PW", {"secretKeyRef": {"name": "db", "key": "password"}})],
            {"PW": SECRET_VALUE},
            id="secret-key",
        ),
        pytest.param(
            [value_from("LVL", {"configMapKeyRef": {"name": "settings", "key": "LOG_LEVEL"}})],
            {"LVL": "debug"},
            id="config-map-key",
        ),
        pytest.param(
            [
                value_from("X", {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}),
                value_from(
                    "Y", {"configMapKeyRef": {"name": "settings", "key": "NOPE", "optional": True}}
                ),
                literal("Z", "kept"),
            ],
            {"Z": "kept"},
            id="optional-missing-skipped",
        ),
        pytest.param(
            [
                value_from("G", {"configMapKeyRef": {"name": "greeting", "key": "text"}}),
                literal("H", "$(G)!"),
            ],
            {"G": "hello", "H": "hello!"},
            id="expands-resolved-value",
        ),
        pytest.param([literal("A", "x" * 1000)], {"A": "x" * 1000}, id="longest-value-accepted"),
    ],
)
def test_env_entries_resolve_like_the_kubelet(
    env: list[dict[str, Any]], expected: dict[str, str]
) -> None:
    assert env_of({"env": env}) == expected


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("container", "expected"),
    [
        pytest.param(
            {"envFrom": [{"configMapRef": {"name": "settings"}}]},
            {"LOG_LEVEL": "debug", "MODE": "fast", "dotted.key": "ok"},
            id="config-map-invalid-names-skipped",
        ),
        pytest.param(
            {"envFrom": [{"prefix": "DB_", "secretRef": {"name": "db"}}]},
            {"DB_password": SECRET_VALUE, "DB_user": "app"},
            id="secret-with-prefix",
        ),
        pytest.param(
            {
                "envFrom": [{"configMapRef": {"name": "settings"}}],
                "env": [literal("MODE", "slow")],
            },
            {"LOG_LEVEL": "debug", "MODE": "slow", "dotted.key": "ok"},
            id="env-overrides-env-from",
        ),
        pytest.param(
            {
                "envFrom": [
                    {"configMapRef": {"name": "settings"}},
                    {"prefix": "", "configMapRef": {"name": "greeting"}},
                ],
            },
            {"LOG_LEVEL": "debug", "MODE": "fast", "dotted.key": "ok", "text": "hello"},
            id="several-sources",
        ),
        pytest.param(
            {"envFrom": [{"secretRef": {"name": "absent", "optional": True}}]},
            {},
            id="optional-source-missing",
        ),
        pytest.param(
            {
                "envFrom": [{"configMapRef": {"name": "settings"}}],
                "env": [literal("L", "$(LOG_LEVEL)")],
            },
            {"LOG_LEVEL": "debug", "MODE": "fast", "dotted.key": "ok", "L": "debug"},
            id="env-expands-env-from",
        ),
    ],
)
def test_env_from_imports_every_key(container: dict[str, Any], expected: dict[str, str]) -> None:
    assert env_of(container) == expected


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("field_path", "expected"),
    [
        pytest.param("metadata.name", "web-7d9f8c6b5d-x2x7k", id="name"),
        pytest.param("metadata.namespace", "default", id="namespace"),
        pytest.param("metadata.uid", UID, id="uid"),
        pytest.param("metadata.labels['app']", "web", id="label"),
        pytest.param("metadata.annotations['team']", "blue", id="annotation"),
        pytest.param("spec.nodeName", NODE_NAME, id="node-name"),
        pytest.param("spec.serviceAccountName", "default", id="service-account"),
        pytest.param("status.hostIP", NODE_IP, id="host-ip"),
        pytest.param("status.hostIPs", NODE_IP, id="host-ips"),
    ],
)
def test_field_refs_read_the_pod_and_node(field_path: str, expected: str) -> None:
    env = [value_from("V", {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}})]

    assert env_of({"env": env}, labels={"app": "web"}, annotations={"team": "blue"}) == {
        "V": expected
    }


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("resources", "ref", "expected"),
    [
        pytest.param(
            {"limits": {"cpu": "1500m"}},
            {"resource": "limits.cpu", "divisor": "1m"},
            "1500",
            id="cpu-limit-in-millicores",
        ),
        pytest.param(
            {"limits": {"cpu": "1500m"}}, {"resource": "limits.cpu"}, "2", id="cpu-limit-rounded-up"
        ),
        pytest.param({}, {"resource": "limits.cpu"}, "1", id="unset-cpu-limit-is-the-allocation"),
        pytest.param(
            {"requests": {"cpu": "250m"}},
            {"resource": "requests.cpu", "divisor": "1m"},
            "250",
            id="cpu-request",
        ),
        pytest.param({}, {"resource": "requests.cpu"}, "0", id="unset-request-is-zero"),
        pytest.param(
            {"limits": {"memory": "2Gi"}},
            {"resource": "limits.memory", "divisor": "1Mi"},
            "2048",
            id="memory-limit-in-mebibytes",
        ),
        pytest.param(
            {},
            {"resource": "limits.memory", "divisor": "1Mi"},
            "1024",
            id="unset-memory-limit-is-the-allocation",
        ),
        pytest.param(
            {"limits": {"memory": "1Gi"}},
            {"resource": "limits.memory"},
            "1073741824",
            id="memory-in-bytes",
        ),
        pytest.param(
            {"limits": {"ephemeral-storage": "2Gi"}},
            {"resource": "limits.ephemeral-storage", "divisor": "1Gi"},
            "2",
            id="storage-limit",
        ),
        pytest.param(
            {"limits": {"cpu": "2"}},
            {"containerName": "app", "resource": "limits.cpu", "divisor": "0"},
            "2",
            id="zero-divisor-reads-as-one",
        ),
    ],
)
def test_resource_field_refs_divide_and_round_up(
    resources: dict[str, Any], ref: dict[str, Any], expected: str
) -> None:
    env = [value_from("V", {"resourceFieldRef": ref})]

    assert env_of({"env": env, "resources": resources}) == {"V": expected}


@pytest.mark.parametrize(
    ("container", "reason", "field", "permanent"),
    [
        pytest.param(
            {"env": [literal("EMPTY", "")]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].value",
            True,
            id="empty-value",
        ),
        pytest.param(
            {"env": [literal("LONG", "x" * 1001)]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].value",
            True,
            id="too-long",
        ),
        pytest.param(
            {"env": [literal("PEM", "-----BEGIN-----\nabc\n-----END-----")]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].value",
            True,
            id="several-lines",
        ),
        pytest.param(
            {"env": [literal("OK", "1"), literal("1BAD", "x")]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[1].name",
            True,
            id="bad-name",
        ),
        pytest.param(
            {"env": [value_from("B", {"secretKeyRef": {"name": "empty", "key": "blank"}})]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].valueFrom",
            True,
            id="empty-secret-value",
        ),
        pytest.param(
            {"envFrom": [{"secretRef": {"name": "empty"}}]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.envFrom[0]",
            True,
            id="empty-env-from-value",
        ),
        pytest.param(
            {"env": [value_from("L", {"fieldRef": {"fieldPath": "metadata.labels['missing']"}})]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].valueFrom",
            True,
            id="missing-label-is-empty",
        ),
        pytest.param(
            {"env": [value_from("S", {"secretKeyRef": {"name": "absent", "key": "k"}})]},
            CREATE_CONTAINER_CONFIG_ERROR,
            f"{CONTAINER}.env[0].valueFrom.secretKeyRef",
            False,
            id="secret-missing",
        ),
        pytest.param(
            {"env": [value_from("S", {"secretKeyRef": {"name": "db", "key": "nope"}})]},
            CREATE_CONTAINER_CONFIG_ERROR,
            f"{CONTAINER}.env[0].valueFrom.secretKeyRef",
            False,
            id="secret-key-missing",
        ),
        pytest.param(
            {"env": [value_from("C", {"configMapKeyRef": {"name": "absent", "key": "k"}})]},
            CREATE_CONTAINER_CONFIG_ERROR,
            f"{CONTAINER}.env[0].valueFrom.configMapKeyRef",
            False,
            id="config-map-missing",
        ),
        pytest.param(
            {"envFrom": [{"configMapRef": {"name": "absent"}}]},
            CREATE_CONTAINER_CONFIG_ERROR,
            f"{CONTAINER}.envFrom[0].configMapRef",
            False,
            id="env-from-missing",
        ),
        pytest.param(
            {"env": [value_from("IP", {"fieldRef": {"fieldPath": "status.podIP"}})]},
            UNSUPPORTED_POD_FEATURE,
            f"{CONTAINER}.env[0].valueFrom.fieldRef.fieldPath",
            True,
            id="pod-ip-unknown",
        ),
        pytest.param(
            {"env": [value_from("X", {"fieldRef": {"fieldPath": "spec.hostname"}})]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].valueFrom.fieldRef.fieldPath",
            True,
            id="unknown-field-path",
        ),
        pytest.param(
            {
                "env": [
                    value_from("X", {"resourceFieldRef": {"resource": "limits.ephemeral-storage"}})
                ]
            },
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].valueFrom.resourceFieldRef.resource",
            True,
            id="storage-limit-unknown",
        ),
        pytest.param(
            {"env": [value_from("X", {"resourceFieldRef": {"resource": "limits.nvidia.com/gpu"}})]},
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].valueFrom.resourceFieldRef.resource",
            True,
            id="resource-not-offered",
        ),
        pytest.param(
            {
                "env": [
                    value_from(
                        "X",
                        {"resourceFieldRef": {"containerName": "other", "resource": "limits.cpu"}},
                    )
                ]
            },
            INVALID_ENVIRONMENT_VARIABLE,
            f"{CONTAINER}.env[0].valueFrom.resourceFieldRef.containerName",
            True,
            id="other-container",
        ),
        pytest.param(
            {
                "env": [
                    value_from("X", {"fileKeyRef": {"path": "a", "key": "b", "volumeName": "v"}})
                ]
            },
            UNSUPPORTED_POD_FEATURE,
            f"{CONTAINER}.env[0].valueFrom",
            True,
            id="unknown-source",
        ),
    ],
)
def test_env_problems_are_refused_with_the_field(
    container: dict[str, Any], reason: str, field: str, permanent: bool
) -> None:
    refusal = refusal_of(
        make_pod(container=container), make_context(secrets=SECRETS, config_maps=CONFIG_MAPS)
    )

    assert (refusal.reason, refusal.field, refusal.permanent) == (reason, field, permanent)
    assert refusal.message.startswith(f"{field}: ")


@pytest.mark.parametrize(
    "container",
    [
        pytest.param(
            {
                "env": [
                    value_from("PW", {"secretKeyRef": {"name": "db", "key": "password"}}),
                    literal("PW2", "$(PW)" + "x" * 1000),
                ]
            },
            id="too-long-after-expansion",
        ),
        pytest.param(
            {
                "env": [
                    value_from("PW", {"secretKeyRef": {"name": "db", "key": "password"}}),
                    literal("PW2", "$(PW)\n"),
                ]
            },
            id="several-lines",
        ),
    ],
)
def test_a_refusal_never_shows_a_secret_value(container: dict[str, Any]) -> None:
    refusal = refusal_of(make_pod(container=container), make_context(secrets=SECRETS))

    assert SECRET_VALUE not in repr(refusal)
