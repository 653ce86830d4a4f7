"""Process settings: flags over ``SALAD_VK_*`` variables over defaults, errors named."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest

from config import ConfigError, DecommissionPolicy, ProcessSettings, parse_listen_address

REQUIRED = {"SALAD_VK_CONFIG": "/etc/salad-vk/projects.yaml"}


def test_defaults_are_the_documented_ones() -> None:
    settings = ProcessSettings.from_sources({}, REQUIRED)

    assert settings.config == Path("/etc/salad-vk/projects.yaml")
    assert settings.kubeconfig is None
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 8080)
    assert (settings.log_format, settings.log_level) == ("text", "info")
    assert settings.decommission_policy is DecommissionPolicy.DRAIN
    assert settings.drain_timeout_seconds == 300
    assert settings.node_status_interval_seconds == 300
    assert settings.lease_duration_seconds == 40
    assert settings.lease_renew_interval_seconds == 10
    assert settings.restart_backoff_initial_seconds < settings.restart_backoff_max_seconds
    assert settings.managed_by is None


def test_every_setting_can_come_from_its_salad_vk_variable() -> None:
    environ = {
        **REQUIRED,
        "SALAD_VK_KUBECONFIG": "/home/me/.kube/config",
        "SALAD_VK_METRICS_ADDRESS": "[::]:9090",
        "SALAD_VK_LOG_FORMAT": "JSON",
        "SALAD_VK_LOG_LEVEL": "DEBUG",
        "SALAD_VK_DECOMMISSION_POLICY": "orphan",
        "SALAD_VK_HTTP_MAX_CONNECTIONS": "50",
        "SALAD_VK_LEASE_DURATION_SECONDS": "60",
        "SALAD_VK_LEASE_RENEW_INTERVAL_SECONDS": "15",
        "salad_vk_shutdown_grace_seconds": "5",  # case does not matter
        "SALAD_VK_DRAIN_TIMEOUT_SECONDS": "600",
        "SALAD_VK_MANAGED_BY": "salad-vk.prod",
    }

    settings = ProcessSettings.from_sources({}, environ)

    assert settings.kubeconfig == Path("/home/me/.kube/config")
    assert (settings.metrics_host, settings.metrics_port) == ("::", 9090)
    assert (settings.log_format, settings.log_level) == ("json", "debug")
    assert settings.decommission_policy is DecommissionPolicy.ORPHAN
    assert settings.http_max_connections == 50
    assert (settings.lease_duration_seconds, settings.lease_renew_interval_seconds) == (60, 15)
    assert settings.shutdown_grace_seconds == 5
    assert settings.drain_timeout_seconds == 600
    assert settings.managed_by == "salad-vk.prod"


def test_a_flag_overrides_the_variable_and_an_absent_flag_does_not() -> None:
    environ = {**REQUIRED, "SALAD_VK_LOG_FORMAT": "json", "SALAD_VK_LOG_LEVEL": "debug"}

    settings = ProcessSettings.from_sources(
        {"log_format": "text", "log_level": None, "config": "/tmp/other.yaml"}, environ
    )

    assert settings.log_format == "text"
    assert settings.log_level == "debug"
    assert settings.config == Path("/tmp/other.yaml")


def test_an_empty_variable_counts_as_unset() -> None:
    settings = ProcessSettings.from_sources({}, {**REQUIRED, "SALAD_VK_KUBECONFIG": ""})

    assert settings.kubeconfig is None


def test_only_the_environment_passed_in_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALAD_VK_LOG_LEVEL", "error")
    monkeypatch.setenv("SALAD_VK_METRICS_ADDRESS", "not an address")

    settings = ProcessSettings.from_sources({}, REQUIRED)

    assert settings.log_level == "info"
    assert settings.metrics_address == "0.0.0.0:8080"


def test_flags_added_to_a_parser_build_the_settings() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unrelated")
    ProcessSettings.add_arguments(parser)

    args = parser.parse_args(
        ["--config", "c.yaml", "--metrics-address", "127.0.0.1:0", "--unrelated", "x"]
    )
    settings = ProcessSettings.from_namespace(args, {"SALAD_VK_LOG_FORMAT": "json"})

    assert settings.config == Path("c.yaml")
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 0)
    assert settings.log_format == "json"


def test_a_missing_config_path_names_the_flag_and_the_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        ProcessSettings.from_sources({}, {})

    assert str(raised.value) == "settings: config: not set: use --config or SALAD_VK_CONFIG"


@pytest.mark.parametrize(
    ("environ", "overrides", "expected"),
    [
        pytest.param(
            {"SALAD_VK_METRICS_ADDRESS": "8080"},
            {},
            "environment: SALAD_VK_METRICS_ADDRESS: '8080' is not HOST:PORT",
            id="address without host",
        ),
        pytest.param(
            {},
            {"metrics_address": "0.0.0.0:99999"},
            "command line: --metrics-address: '0.0.0.0:99999': port must be a number",
            id="port out of range",
        ),
        pytest.param(
            {"SALAD_VK_LOG_FORMAT": "yaml"},
            {},
            "environment: SALAD_VK_LOG_FORMAT: must be 'text' or 'json' (got 'yaml')",
            id="log format",
        ),
        pytest.param(
            {"SALAD_VK_DECOMMISSION_POLICY": "delete"},
            {},
            "environment: SALAD_VK_DECOMMISSION_POLICY: must be 'drain', 'orphan' or 'keep'",
            id="decommission policy",
        ),
        pytest.param(
            {"SALAD_VK_DRAIN_TIMEOUT_SECONDS": "0"},
            {},
            "environment: SALAD_VK_DRAIN_TIMEOUT_SECONDS: must be greater than 0 (got '0')",
            id="drain timeout",
        ),
        pytest.param(
            {},
            {"drain_timeout_seconds": "soon"},
            "command line: --drain-timeout-seconds: must be a valid number",
            id="drain timeout not a number",
        ),
        pytest.param(
            {"SALAD_VK_HTTP_MAX_CONNECTIONS": "lots"},
            {},
            "environment: SALAD_VK_HTTP_MAX_CONNECTIONS: must be a valid integer",
            id="not a number",
        ),
        pytest.param(
            {},
            {"lease_renew_interval_seconds": "40"},
            "command line: --lease-renew-interval-seconds: 40 s is not shorter than the"
            " lease duration (40 s)",
            id="renewal not shorter than the lease",
        ),
        pytest.param(
            {"SALAD_VK_MANAGED_BY": "salad-vk/prod"},
            {},
            "environment: SALAD_VK_MANAGED_BY: 'salad-vk/prod' is not a valid label value",
            id="managed-by that is no label value",
        ),
        pytest.param(
            {"SALAD_VK_RESTART_BACKOFF_MAX_SECONDS": "0.5"},
            {},
            "environment: SALAD_VK_RESTART_BACKOFF_MAX_SECONDS: 0.5 s is less than the"
            " initial backoff (1 s)",
            id="backoff max below initial",
        ),
    ],
)
def test_a_bad_value_names_where_it_came_from(
    environ: dict[str, str], overrides: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        ProcessSettings.from_sources(overrides, {**REQUIRED, **environ})

    (problem,) = raised.value.problems
    assert str(problem).startswith(expected)


def test_every_bad_value_is_reported_at_once() -> None:
    environ = {**REQUIRED, "SALAD_VK_LOG_LEVEL": "loud", "SALAD_VK_LOG_FORMAT": "xml"}

    with pytest.raises(ConfigError) as raised:
        ProcessSettings.from_sources({}, environ)

    assert [p.key_path for p in raised.value.problems] == [
        "SALAD_VK_LOG_FORMAT",
        "SALAD_VK_LOG_LEVEL",
    ]


def test_an_unknown_override_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="metrics_adress"):
        ProcessSettings.from_sources({"metrics_adress": "x"}, REQUIRED)


def test_http_pool_limits_and_timeouts_come_from_the_settings() -> None:
    settings = ProcessSettings.from_sources(
        {"http_max_connections": 7, "http_read_timeout_seconds": 3},
        {**REQUIRED, "SALAD_VK_HTTP_KEEPALIVE_EXPIRY_SECONDS": "2"},
    )

    assert settings.http_limits() == httpx.Limits(max_connections=7, keepalive_expiry=2.0)
    assert settings.http_timeout() == httpx.Timeout(connect=10.0, read=3.0, write=30.0, pool=30.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("localhost:0", ("localhost", 0)),
        ("metrics.example.com:443", ("metrics.example.com", 443)),
        ("[::1]:9090", ("::1", 9090)),
    ],
)
def test_listen_addresses_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(
    "text", ["8080", ":8080", "host:", "host:http", "::1:9090", "[nope]:80", "a b:80", "h:65536"]
)
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"HOST:PORT|port|IPv6|host name"):
        parse_listen_address(text)
