import base64
import json
from typing import Any

import pytest

from nodes.translate import INVALID_IMAGE_PULL_SECRET
from nodes.translate.registry_auth import Location, image_location
from tests.translate.pods import create_body, make_context, make_pod, refusal_of

PASSWORD = "pa55-w0rd"
GCP_KEY = '{\n  "type": "service_account",\n  "private_key": "-----BEGIN PRIVATE KEY-----\\n..."\n}'
ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def docker_config(**entries: dict[str, Any]) -> dict[str, str]:
    return {".dockerconfigjson": json.dumps({"auths": entries})}


def entry(username: str, password: str = PASSWORD) -> dict[str, Any]:
    return {"auth": auth(username, password)}


def authentication(
    image: str, secrets: dict[str, dict[str, str]], names: list[str] | None = None
) -> dict[str, Any] | None:
    pull_secrets = [{"name": name} for name in (names or list(secrets))]
    pod = make_pod(container={"image": image}, spec={"imagePullSecrets": pull_secrets})
    result: dict[str, Any] | None = create_body(pod, make_context(secrets=secrets))[
        "container"
    ].get("registry_authentication")
    return result


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param("nginx", Location("docker.io", ("library", "nginx")), id="official-image"),
        pytest.param("nginx:1.27", Location("docker.io", ("library", "nginx")), id="tag"),
        pytest.param(
            "acme/app@sha256:" + "a" * 64, Location("docker.io", ("acme", "app")), id="digest"
        ),
        pytest.param(
            "index.docker.io/acme/app", Location("docker.io", ("acme", "app")), id="hub-alias"
        ),
        pytest.param("localhost/app", Location("localhost", ("app",)), id="localhost"),
        pytest.param(
            "Registry.Example.com:5000/team/app:v1",
            Location("registry.example.com:5000", ("team", "app")),
            id="port",
        ),
    ],
)
def test_image_location_follows_docker_reference_rules(image: str, expected: Location) -> None:
    assert image_location(image) == expected


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("image", "secrets", "expected"),
    [
        pytest.param(
            "acme/app:1",
            {"hub": docker_config(**{"https://index.docker.io/v1/": entry("acme")})},
            {"docker_hub": {"username": "acme", "personal_access_token": PASSWORD}},
            id="docker-hub-legacy-key",
        ),
        pytest.param(
            "docker.io/acme/app:1",
            {"hub": docker_config(**{"docker.io": {"username": "acme", "password": PASSWORD}})},
            {"docker_hub": {"username": "acme", "personal_access_token": PASSWORD}},
            id="docker-hub-username-password",
        ),
        pytest.param(
            "registry.example.com/team/app:1",
            {"reg": docker_config(**{"registry.example.com": entry("robot")})},
            {"basic": {"username": "robot", "password": PASSWORD}},
            id="private-registry-basic",
        ),
        pytest.param(
            "registry.example.com/team/app:1",
            {"reg": {".dockercfg": json.dumps({"https://registry.example.com": entry("old")})}},
            {"basic": {"username": "old", "password": PASSWORD}},
            id="legacy-dockercfg",
        ),
        pytest.param(
            f"{ECR_HOST}/app:1",
            {"ecr": docker_config(**{ECR_HOST: entry("AKIAEXAMPLE", "secret-key")})},
            {"aws_ecr": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret-key"}},
            id="ecr-access-key",
        ),
        pytest.param(
            f"{ECR_HOST}/app:1",
            {"ecr": docker_config(**{f"https://{ECR_HOST}": entry("AWS", "ecr-login-token")})},
            {"basic": {"username": "AWS", "password": "ecr-login-token"}},
            id="ecr-login-token",
        ),
        pytest.param(
            "gcr.io/project/app:1",
            {"gcr": docker_config(**{"gcr.io": entry("_json_key", GCP_KEY)})},
            {"gcp_gcr": {"service_key": GCP_KEY}},
            id="gcr-json-key",
        ),
        pytest.param(
            "eu.gcr.io/project/app:1",
            {"gcr": docker_config(**{"eu.gcr.io": entry("oauth2accesstoken", "ya29.token")})},
            {"basic": {"username": "oauth2accesstoken", "password": "ya29.token"}},
            id="gcr-access-token",
        ),
        pytest.param(
            "europe-docker.pkg.dev/project/repo/app:1",
            {
                "gar": docker_config(
                    **{
                        "europe-docker.pkg.dev": entry(
                            "_json_key_base64", base64.b64encode(GCP_KEY.encode()).decode()
                        )
                    }
                )
            },
            {"gcp_gar": {"service_key": GCP_KEY}},
            id="gar-base64-key",
        ),
        pytest.param(
            "registry.example.com/team/app:1",
            {
                "reg": docker_config(
                    **{
                        "registry.example.com": entry("everyone"),
                        "registry.example.com/team": entry("team"),
                    }
                )
            },
            {"basic": {"username": "team", "password": PASSWORD}},
            id="longest-path-wins",
        ),
        pytest.param(
            "registry.example.com/app:1",
            {
                "reg": docker_config(
                    **{"*.example.com": entry("wild"), "registry.example.com": entry("exact")}
                )
            },
            {"basic": {"username": "exact", "password": PASSWORD}},
            id="exact-host-beats-wildcard",
        ),
        pytest.param(
            "registry.example.com/app:1",
            {"reg": docker_config(**{"*.example.com": entry("wild")})},
            {"basic": {"username": "wild", "password": PASSWORD}},
            id="wildcard-host",
        ),
        pytest.param(
            "registry.example.com/app:1",
            {
                "first": docker_config(**{"registry.example.com": entry("first")}),
                "second": docker_config(**{"registry.example.com": entry("second")}),
            },
            {"basic": {"username": "first", "password": PASSWORD}},
            id="earlier-secret-wins-a-tie",
        ),
        pytest.param(
            "registry.example.com/app:1",
            {"hub": docker_config(**{"https://index.docker.io/v1/": entry("acme")})},
            None,
            id="no-matching-registry",
        ),
        pytest.param(
            "registry.example.com:5000/app:1",
            {"reg": docker_config(**{"registry.example.com": entry("robot")})},
            None,
            id="port-must-match",
        ),
        pytest.param(
            "registry.example.com/other/app:1",
            {"reg": docker_config(**{"registry.example.com/team": entry("team")})},
            None,
            id="path-must-match",
        ),
        pytest.param(
            "registry.example.com/app:1",
            {"reg": docker_config(**{"registry.example.com": {"identitytoken": "opaque"}})},
            None,
            id="token-only-entry-unusable",
        ),
        pytest.param(
            "registry.example.com/app:1",
            {"opaque": {"config.json": "{}"}},
            None,
            id="secret-without-docker-config",
        ),
    ],
)
def test_pull_secrets_become_typed_registry_authentication(
    image: str, secrets: dict[str, dict[str, str]], expected: dict[str, Any] | None
) -> None:
    assert authentication(image, secrets) == expected


@pytest.mark.spec_checked
def test_a_missing_pull_secret_means_pulling_without_credentials() -> None:
    assert authentication("registry.example.com/app:1", {}, names=["absent"]) is None


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param({".dockerconfigjson": "{not json"}, id="not-json"),
        pytest.param(
            docker_config(**{"registry.example.com": {"auth": "%%%"}}), id="auth-not-base64"
        ),
        pytest.param(
            docker_config(
                **{"registry.example.com": {"auth": base64.b64encode(b"no-colon").decode()}}
            ),
            id="auth-without-colon",
        ),
        pytest.param(
            docker_config(**{"registry.example.com": entry("robot", "x" * 10001)}),
            id="password-too-long",
        ),
    ],
)
def test_unreadable_pull_secrets_are_refused_without_showing_them(secret: dict[str, str]) -> None:
    pod = make_pod(
        container={"image": "registry.example.com/app:1"},
        spec={"imagePullSecrets": [{"name": "reg"}]},
    )

    refusal = refusal_of(pod, make_context(secrets={"reg": secret}))

    assert (refusal.reason, refusal.field) == (
        INVALID_IMAGE_PULL_SECRET,
        "spec.imagePullSecrets[0]",
    )
    assert "%%%" not in refusal.message
    assert "xxxx" not in refusal.message
