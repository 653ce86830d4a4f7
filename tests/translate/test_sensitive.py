"""Secret values are scrubbed out of what SaladCloud says back before anyone sees it."""

from __future__ import annotations

from nodes.saladcloud.models import ContainerGroupPrototype
from nodes.translate.sensitive import REDACTED, scrub, sensitive_values


def body_with_registry(password: str) -> ContainerGroupPrototype:
    return ContainerGroupPrototype.model_validate(
        {
            "name": "pod-1",
            "container": {
                "image": "ghcr.io/acme/app:1",
                "resources": {"cpu": 1, "memory": 1024},
                "registry_authentication": {"basic": {"username": "robot", "password": password}},
            },
            "autostart_policy": True,
            "replicas": 1,
            "restart_policy": "always",
        }
    )


def test_secret_values_and_registry_credentials_are_scrubbed() -> None:
    values = sensitive_values(
        {"db": {"password": "hunter2-long", "port": "1"}},
        body_with_registry("ghp_abcdef0123"),
    )
    assert values == {"hunter2-long", "ghp_abcdef0123", "robot"}
    detail = "env DB=hunter2-long invalid; registry ghp_abcdef0123 refused for robot; port 1"
    assert scrub(detail, values) == (
        f"env DB={REDACTED} invalid; registry {REDACTED} refused for {REDACTED}; port 1"
    )


def test_a_value_containing_another_is_removed_whole() -> None:
    assert scrub("x=abcdefgh", {"abcd", "abcdefgh"}) == f"x={REDACTED}"
