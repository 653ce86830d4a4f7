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


def test_a_value_is_found_however_the_error_text_spells_it() -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    )
    values = {"s3cr3t-db-password\n", key}
    squeezed = " ".join(key.split())
    for said in (
        "env DB='s3cr3t-db-password\\n' rejected",  # repr-quoted
        'env DB="s3cr3t-db-password\\n" rejected',  # JSON-quoted
        f"service_key {squeezed} invalid",  # the client squeezes whitespace
        f"service_key {key!r} invalid",
    ):
        scrubbed = scrub(said, values)
        assert "s3cr3t-db-password" not in scrubbed and "MIIEvQ" not in scrubbed, scrubbed


def test_a_value_cut_short_at_the_end_of_a_detail_is_removed_too() -> None:
    cut = "the body had TOKEN=abcdefghijkl…"
    assert scrub(cut, {"abcdefghijklmnopqrstuvwxyz"}) == f"the body had TOKEN={REDACTED}…"
