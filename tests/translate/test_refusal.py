"""Which problem a pod with several problems is refused for, and how."""

import dataclasses
from typing import Any

import pytest

from nodes.translate import (
    CREATE_CONTAINER_CONFIG_ERROR,
    INVALID_ANNOTATION,
    INVALID_ENVIRONMENT_VARIABLE,
    UNSUPPORTED_POD_FEATURE,
    UNSUPPORTED_RESOURCE_REQUEST,
    Refusal,
    TranslationContext,
)
from tests.translate.pods import CONTAINER, make_context, make_pod, refusal_of

MISSING_SECRET_ENV = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]


@pytest.mark.parametrize(
    ("pod", "field"),
    [
        pytest.param(
            make_pod(
                annotations={"salad.com/container-group-priority": "urgent"},
                spec={"initContainers": [{"name": "i", "image": "x"}], "hostNetwork": True},
            ),
            "metadata.annotations['salad.com/container-group-priority']",
            id="metadata-before-spec",
        ),
        pytest.param(
            make_pod(
                spec={
                    "volumes": [{"name": "cfg", "configMap": {"name": "c"}}],
                    "initContainers": [{"name": "i", "image": "x"}],
                },
                token_volume=False,
            ),
            "spec.volumes[0]",
            id="volumes-before-init-containers",
        ),
        pytest.param(
            make_pod(
                container={
                    "env": [{"name": "E", "value": ""}],
                    "resources": {"limits": {"nvidia.com/gpu": "4"}},
                },
            ),
            f"{CONTAINER}.env[0].value",
            id="env-before-resources",
        ),
        pytest.param(
            make_pod(
                container={
                    "resources": {"limits": {"nvidia.com/gpu": "4"}},
                    "readinessProbe": {"exec": {"command": []}},
                },
            ),
            f"{CONTAINER}.resources.limits['nvidia.com/gpu']",
            id="resources-before-probes",
        ),
        pytest.param(
            make_pod(
                container={
                    "livenessProbe": {"exec": {"command": []}},
                    "readinessProbe": {"exec": {"command": []}},
                },
                spec={"hostPID": True},
            ),
            f"{CONTAINER}.livenessProbe.exec.command",
            id="liveness-before-readiness-before-pod-flags",
        ),
        pytest.param(
            make_pod(
                container={"args": ["x"], "workingDir": "/srv", "env": [{"name": "E", "value": ""}]}
            ),
            f"{CONTAINER}.args",
            id="command-before-working-dir-before-env",
        ),
        pytest.param(
            make_pod(container={"workingDir": "/srv", "env": [{"name": "E", "value": ""}]}),
            f"{CONTAINER}.workingDir",
            id="working-dir-before-env",
        ),
        pytest.param(
            make_pod(container={"env": [{"name": "A", "value": ""}, {"name": "B", "value": ""}]}),
            f"{CONTAINER}.env[0].value",
            id="first-env-entry",
        ),
        pytest.param(
            make_pod(container={"env": MISSING_SECRET_ENV}, spec={"hostIPC": True}),
            "spec.hostIPC",
            id="permanent-before-retryable",
        ),
    ],
)
def test_the_first_permanent_problem_in_spec_order_is_reported(
    pod: dict[str, Any], field: str
) -> None:
    assert refusal_of(pod).field == field


def test_a_missing_secret_alone_is_a_retryable_refusal() -> None:
    refusal = refusal_of(make_pod(container={"env": MISSING_SECRET_ENV}))

    assert refusal == Refusal(
        reason=CREATE_CONTAINER_CONFIG_ERROR,
        message=f'{CONTAINER}.env[0].valueFrom.secretKeyRef: secret "absent" not found',
        field=f"{CONTAINER}.env[0].valueFrom.secretKeyRef",
        permanent=False,
    )


@pytest.mark.parametrize(
    ("pod", "reason"),
    [
        pytest.param(
            make_pod(spec={"hostNetwork": True}), UNSUPPORTED_POD_FEATURE, id="pod-feature"
        ),
        pytest.param(
            make_pod(annotations={"salad.com/nope": "x"}), INVALID_ANNOTATION, id="annotation"
        ),
        pytest.param(
            make_pod(container={"env": [{"name": "E", "value": ""}]}),
            INVALID_ENVIRONMENT_VARIABLE,
            id="env",
        ),
        pytest.param(
            make_pod(container={"resources": {"limits": {"nvidia.com/gpu": "2"}}}),
            UNSUPPORTED_RESOURCE_REQUEST,
            id="resources",
        ),
    ],
)
def test_refusals_carry_a_kubelet_style_reason(pod: dict[str, Any], reason: str) -> None:
    refusal = refusal_of(pod)

    assert refusal.reason == reason
    assert refusal.reason[0].isupper() and " " not in refusal.reason


def test_a_refusal_is_an_immutable_value() -> None:
    refusal = refusal_of(make_pod(spec={"hostNetwork": True}))

    with pytest.raises(dataclasses.FrozenInstanceError):
        refusal.reason = "Other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"default_country_codes": ("xx",)}, "country codes", id="country-code"),
        pytest.param({"default_priority": "urgent"}, "priority", id="priority"),
        pytest.param({"default_cpu": 0}, "cpu", id="cpu"),
        pytest.param({"default_memory_mb": 512}, "memory", id="memory"),
    ],
)
def test_node_defaults_saladcloud_would_reject_fail_at_once(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_context(**overrides)


def test_a_context_with_valid_defaults_builds() -> None:
    ctx = make_context(default_country_codes=("us", "no"), default_priority="batch")

    assert isinstance(ctx, TranslationContext)


def test_a_logged_context_does_not_show_secret_values() -> None:
    ctx = make_context(secrets={"db": {"password": "hunter2-secret"}})

    assert "hunter2-secret" not in repr(ctx)
