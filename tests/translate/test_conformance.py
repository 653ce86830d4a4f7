"""Create bodies satisfy the SaladCloud spec, even when a pod uses every feature at once."""

import base64
import json
from typing import Any

import pytest

from tests.openapi import component_errors
from tests.translate.pods import (
    RTX_4090,
    TOKEN_MOUNT,
    TOKEN_VOLUME,
    create_body,
    make_context,
    make_pod,
)

REGISTRY_AUTH = base64.b64encode(b"robot:pa55").decode()


def every_feature_body() -> dict[str, Any]:
    """The create body of a pod that uses every feature the translation knows."""
    pod = make_pod(
        annotations={
            "salad.com/gpu-classes": RTX_4090.name,
            "salad.com/country-codes": "us,no",
            "salad.com/container-group-priority": "batch",
            "salad.com/networking-port": "http",
            "salad.com/networking-auth": "true",
            "salad.com/networking-load-balancer": "round_robin",
            "salad.com/networking-client-request-timeout": "1",
            "salad.com/networking-server-response-timeout": "100000",
            "salad.com/networking-single-connection-limit": "false",
            "salad.com/logging-datadog-host": "http-intake.logs.datadoghq.com",
            "salad.com/logging-secret": "logs",
            "salad.com/image-caching": "true",
        },
        container={
            "image": "registry.example.com/ml/worker:2.1",
            "command": ["python", "-m", "worker"],
            "args": ["--port", "$(PORT)"],
            "ports": [{"name": "http", "containerPort": 8000}],
            "env": [
                {"name": "PORT", "value": "8000"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {
                    "name": "MEM_MB",
                    "valueFrom": {
                        "resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}
                    },
                },
            ],
            "envFrom": [{"configMapRef": {"name": "settings"}}],
            "resources": {
                "limits": {
                    "cpu": "3500m",
                    "memory": "12Gi",
                    "nvidia.com/gpu": "1",
                    "ephemeral-storage": "50Gi",
                },
            },
            "volumeMounts": [TOKEN_MOUNT, {"name": "dshm", "mountPath": "/dev/shm"}],
            "startupProbe": {
                "httpGet": {"path": "/started", "port": "http"},
                "failureThreshold": 60,
            },
            "livenessProbe": {"grpc": {"port": 9000}, "timeoutSeconds": 90},
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1},
        },
        spec={
            "volumes": [
                TOKEN_VOLUME,
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}},
            ],
            "imagePullSecrets": [{"name": "regcred"}],
            "restartPolicy": "OnFailure",
        },
    )
    ctx = make_context(
        secrets={
            "logs": {"datadog-api-key": "dd-key"},
            "regcred": {
                ".dockerconfigjson": json.dumps(
                    {"auths": {"registry.example.com": {"auth": REGISTRY_AUTH}}}
                )
            },
        },
        config_maps={"settings": {"LOG_LEVEL": "info"}},
    )

    return create_body(pod, ctx)


@pytest.mark.spec_checked
def test_a_pod_using_every_feature_translates_at_once() -> None:
    body = every_feature_body()

    assert body["container"]["resources"] == {
        "cpu": 4,
        "memory": 12288,
        "gpu_classes": [RTX_4090.id],
        "storage_amount": 53687091200,
        "shm_size": 2048,
    }
    assert body["container"]["environment_variables"] == {
        "LOG_LEVEL": "info",
        "PORT": "8000",
        "POD": "web-7d9f8c6b5d-x2x7k",
        "MEM_MB": "12288",
    }
    assert body["container"]["registry_authentication"] == {
        "basic": {"username": "robot", "password": "pa55"}
    }
    assert body["liveness_probe"]["timeout_seconds"] == 60
    assert body["startup_probe"]["failure_threshold"] == 20


def test_a_pod_using_every_feature_translates_to_a_valid_create_body(
    saladcloud_spec: dict[str, Any],
) -> None:
    assert component_errors(saladcloud_spec, "ContainerGroupPrototype", every_feature_body()) == []


def test_the_spec_check_itself_catches_bad_bodies(saladcloud_spec: dict[str, Any]) -> None:
    body = create_body(make_pod())
    body["container"]["environment_variables"] = {"EMPTY": ""}
    body["country_codes"] = []

    errors = component_errors(saladcloud_spec, "ContainerGroupPrototype", body)

    assert [error.split(":")[0] for error in errors] == [
        "container/environment_variables/EMPTY",
        "country_codes",
    ]
