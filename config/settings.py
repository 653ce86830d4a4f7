"""Settings of the process: from command-line flags, else ``SALAD_VK_*`` variables.

Everything about *which* projects to serve lives in the projects file (see
``config.loading``); these are the knobs of the process hosting them.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args

import httpx
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError, ConfigProblem, plain_message
from .kube_names import check_label_value, check_subdomain

ENV_PREFIX = "SALAD_VK_"
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")
_MAX_PORT = 65535
MAX_IDENTITY_LENGTH = 200
"""Leaves room in a Lease name (253 characters) for the membership prefix."""
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class DecommissionPolicy(StrEnum):
    """What happens to a node removed from the projects file."""

    DRAIN = "drain"
    """Cordon, delete its pods gracefully (so their container groups are deleted),
    then delete the Node and its Lease."""
    ORPHAN = "orphan"
    """Delete the Node and its Lease; leave pods and container groups alone."""
    KEEP = "keep"
    """Stop serving the node and touch nothing: the Node goes NotReady."""


LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets: ``[::]:8080``) -> ``(host, port)``."""
    host, colon, port_text = value.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{value!r} is not HOST:PORT (for example 0.0.0.0:8080 or [::]:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{value!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"{value!r}: write an IPv6 host in brackets, as in [::]:8080")
    elif not _HOSTNAME.match(host):
        raise ValueError(f"{value!r}: {host!r} is not a host name or IP address")
    if not port_text.isdigit() or int(port_text) > _MAX_PORT:
        raise ValueError(f"{value!r}: port must be a number from 0 to {_MAX_PORT}")
    return host, int(port_text)


class ProcessSettings(BaseSettings):
    """The process's settings. Build with ``from_sources`` (or ``from_namespace``).

    Precedence: a command-line flag, else the ``SALAD_VK_<NAME>`` environment
    variable (case-insensitive; empty counts as unset), else the default.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
    )

    config: Path = Field(description="Path of the projects file.")
    kubeconfig: Path | None = Field(
        None,
        description="Path of a kubeconfig file; when unset: KUBECONFIG (files separated by"
        " ':', merged as kubectl does), else ~/.kube/config, else the in-cluster service"
        " account.",
    )
    metrics_address: str = Field(
        "0.0.0.0:8080",
        description="HOST:PORT serving /metrics, /healthz and /readyz (IPv6 as [::]:8080;"
        " port 0 picks a free port).",
    )
    kubelet_address: str = Field(
        "0.0.0.0:10250",
        description="HOST:PORT of the kubelet API (HTTPS) every node advertises, for kubectl"
        " logs, /pods and stats (IPv6 as [::]:10250; port 0 picks a free port, which the"
        " nodes then advertise).",
    )
    kubelet_tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate the kubelet API serves, re-read when it changes; when"
        " unset, a self-signed one is made at start for the node address.",
    )
    kubelet_tls_key_file: Path | None = Field(
        None, description="PEM private key of --kubelet-tls-cert-file, re-read with it."
    )
    kubelet_follow_interval_seconds: float = Field(
        2.0,
        ge=0.1,
        description="Seconds between two SaladCloud log queries of a followed log"
        " (kubectl logs -f).",
    )
    kubelet_max_followers_per_key: int = Field(
        20,
        ge=1,
        description="Logs that may be followed at once per SaladCloud API key (they poll its"
        " request budget at the lowest priority); more are answered 429.",
    )
    log_format: LogFormat = Field("text", description="Log lines as `text` or `json`.")
    log_level: LogLevel = Field(
        "info", description="Lowest level logged: debug, info, warning, error, critical."
    )
    http_max_connections: int = Field(
        100,
        ge=1,
        description="Connections the shared SaladCloud HTTP client may open, and requests"
        " it lets in flight at once (more wait in line in front of the pool).",
    )
    http_keepalive_expiry_seconds: float = Field(
        5.0, ge=0, description="Seconds an idle HTTP connection is kept."
    )
    http_connect_timeout_seconds: float = Field(
        10.0, gt=0, description="Seconds to open a connection to SaladCloud."
    )
    http_read_timeout_seconds: float = Field(
        60.0, gt=0, description="Seconds to wait for SaladCloud's response data."
    )
    http_write_timeout_seconds: float = Field(
        30.0, gt=0, description="Seconds to send a request body to SaladCloud."
    )
    http_pool_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds a request may wait for a free connection (its place in"
        " line in front of the HTTP pool).",
    )
    kube_max_connections: int = Field(
        0,
        ge=0,
        description="Connections the shared Kubernetes client may open; 0 sets no"
        " pool-wide limit, because each node bounds its own use (one pod watch, one lease"
        " writer, at most 8 concurrent pod writes) and a pool-wide cap would let one busy"
        " node hold back another's lease renewals.",
    )
    kube_request_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description="Seconds a Kubernetes request (other than a watch) may take.",
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        ge=0,
        description="On SIGTERM/SIGINT, seconds to let in-flight SaladCloud mutations"
        " finish; the process is gone within this plus 5 s. Keep it 5 s below the pod's"
        " terminationGracePeriodSeconds.",
    )
    decommission_policy: DecommissionPolicy = Field(
        DecommissionPolicy.DRAIN,
        description="What happens to a node removed from the projects file: drain, orphan or keep.",
    )
    drain_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="Under the drain policy, seconds a removed node's pods get to be gone (and"
        " their container groups deleted) before its Node and Lease are deleted anyway.",
    )
    config_poll_interval_seconds: float = Field(
        2.0, ge=0.1, description="Seconds between two checks of the projects and key files."
    )
    node_status_interval_seconds: float = Field(
        300.0,
        ge=1,
        description="Seconds between two Node status reports when nothing changed (the"
        " Lease is the heartbeat).",
    )
    lease_duration_seconds: int = Field(
        40, ge=1, description="leaseDurationSeconds written in each node's Lease."
    )
    lease_renew_interval_seconds: float = Field(
        10.0, gt=0, description="Seconds between two renewals of a node's Lease."
    )
    identity: str | None = Field(
        None,
        description="Who this replica is: the name of its membership Lease and the holder"
        " of the node Leases it owns. Unique per replica; unset means $POD_NAME, else the"
        " host name.",
    )
    lease_namespace: str | None = Field(
        None,
        description="Namespace of the replicas' membership Leases (the release's namespace);"
        " unset means $POD_NAMESPACE, else `default`.",
    )
    ownership_timeout_seconds: float = Field(
        15.0,
        ge=3,
        description="How long a replica's membership Lease must stand still before another"
        " replica takes its nodes over; the replica itself stops acting on them after"
        " two thirds of it without a successful renewal.",
    )
    restart_backoff_initial_seconds: float = Field(
        1.0, gt=0, description="Delay before restarting a node that failed once."
    )
    restart_backoff_max_seconds: float = Field(
        60.0, gt=0, description="Longest delay between restarts of a failing node."
    )
    managed_by: str | None = Field(
        None,
        description="Value of the node-restriction.kubernetes.io/salad-vk label written on"
        " every Node and node Lease; the chart's admission policy lets the process write"
        " only Nodes and Leases that carry its release's value. Unset: no such label.",
    )

    @field_validator("log_level", "log_format", "decommission_policy", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("metrics_address", "kubelet_address")
    @classmethod
    def _listen_address(cls, value: str) -> str:
        parse_listen_address(value)
        return value

    @field_validator("managed_by")
    @classmethod
    def _label_value(cls, value: str | None) -> str | None:
        return None if value is None else check_label_value(value)

    @field_validator("kubelet_tls_key_file")
    @classmethod
    def _key_with_certificate(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        certificate = info.data.get("kubelet_tls_cert_file")
        if value is None and certificate is not None:
            raise ValueError("not set, but the certificate file is: set both or neither")
        if value is not None and certificate is None:
            raise ValueError("set, but the certificate file is not: set both or neither")
        return value

    @field_validator("lease_renew_interval_seconds")
    @classmethod
    def _renew_within_lease(cls, value: float, info: ValidationInfo) -> float:
        duration = info.data.get("lease_duration_seconds")
        if duration is not None and value >= duration:
            raise ValueError(
                f"{value:g} s is not shorter than the lease duration ({duration} s): the"
                " lease would expire between renewals"
            )
        return value

    @field_validator("identity")
    @classmethod
    def _identity_is_a_name(cls, value: str | None) -> str | None:
        # It names the replica's membership Lease (after a short prefix).
        if value is not None:
            check_subdomain(value)
            if len(value) > MAX_IDENTITY_LENGTH:
                raise ValueError(f"{value!r} is longer than {MAX_IDENTITY_LENGTH} characters")
        return value

    @field_validator("lease_namespace")
    @classmethod
    def _namespace_is_a_label(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a namespace name (a DNS-1123 label: at most 63 lowercase"
                " letters, digits and '-')"
            )
        return value

    @field_validator("restart_backoff_max_seconds")
    @classmethod
    def _max_above_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("restart_backoff_initial_seconds")
        if initial is not None and value < initial:
            raise ValueError(f"{value:g} s is less than the initial backoff ({initial:g} s)")
        return value

    # --- building ---------------------------------------------------------------

    @staticmethod
    def env_var(name: str) -> str:
        """The environment variable of setting ``name``."""
        return ENV_PREFIX + name.upper()

    @staticmethod
    def flag(name: str) -> str:
        """The command-line flag of setting ``name``."""
        return "--" + name.replace("_", "-")

    @classmethod
    def from_sources(
        cls, cli_overrides: Mapping[str, Any], environ: Mapping[str, str]
    ) -> ProcessSettings:
        """Settings from flags (``None`` meaning "not given") over ``environ``.

        ``environ`` is the only environment read. Raises ``ConfigError`` naming the
        flag or variable of every bad value.
        """
        unknown = sorted(set(cli_overrides) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"not process settings: {', '.join(unknown)}")
        env = {name.upper(): value for name, value in environ.items()}
        values: dict[str, Any] = {}
        origins: dict[str, tuple[str, str]] = {}
        for name, field in cls.model_fields.items():
            if cli_overrides.get(name) is not None:
                values[name] = cli_overrides[name]
                origins[name] = ("command line", cls.flag(name))
            elif env.get(cls.env_var(name)):
                values[name] = env[cls.env_var(name)]
                origins[name] = ("environment", cls.env_var(name))
            elif not field.is_required():
                # Passing every value explicitly leaves nothing for BaseSettings' own
                # sources (os.environ, dotenv) to fill in.
                values[name] = field.get_default(call_default_factory=True)
                origins[name] = ("default", name)
        missing = [name for name in cls.model_fields if name not in values]
        if missing:
            raise ConfigError(
                [
                    ConfigProblem(
                        "settings",
                        None,
                        name,
                        f"not set: use {cls.flag(name)} or {cls.env_var(name)}",
                    )
                    for name in missing
                ]
            )
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(
                [_settings_problem(error, values, origins) for error in exc.errors()]
            ) from None

    @classmethod
    def from_namespace(
        cls, args: argparse.Namespace, environ: Mapping[str, str]
    ) -> ProcessSettings:
        """``from_sources`` with the attributes of ``args`` that name settings."""
        given = {name: value for name, value in vars(args).items() if name in cls.model_fields}
        return cls.from_sources(given, environ)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one flag per setting; an absent flag leaves the setting to the environment."""
        for name, field in cls.model_fields.items():
            default = "required" if field.is_required() else f"default: {field.default}"
            parser.add_argument(
                cls.flag(name),
                dest=name,
                default=None,
                metavar=_metavar(name, field),
                help=f"{field.description} [{cls.env_var(name)}; {default}]",
            )

    # --- use ----------------------------------------------------------------------

    @property
    def metrics_host(self) -> str:
        return parse_listen_address(self.metrics_address)[0]

    @property
    def metrics_port(self) -> int:
        return parse_listen_address(self.metrics_address)[1]

    def http_limits(self) -> httpx.Limits:
        return httpx.Limits(
            max_connections=self.http_max_connections,
            keepalive_expiry=self.http_keepalive_expiry_seconds,
        )

    def http_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.http_connect_timeout_seconds,
            read=self.http_read_timeout_seconds,
            write=self.http_write_timeout_seconds,
            pool=self.http_pool_timeout_seconds,
        )


def _metavar(name: str, field: FieldInfo) -> str:
    if name.endswith("_seconds"):
        return "SECONDS"
    if name in ("metrics_address", "kubelet_address"):
        return "HOST:PORT"
    if name == "managed_by":
        return "LABEL-VALUE"
    if name in ("identity", "lease_namespace"):
        return "NAME"
    choices = get_args(field.annotation)
    if choices and all(isinstance(choice, str) for choice in choices):
        return "{" + ",".join(choices) + "}"
    if isinstance(field.annotation, type) and issubclass(field.annotation, StrEnum):
        return "{" + ",".join(member.value for member in field.annotation) + "}"
    if field.annotation is int:
        return "N"
    return "FILE"


def _settings_problem(
    error: Any, values: Mapping[str, Any], origins: Mapping[str, tuple[str, str]]
) -> ConfigProblem:
    name = str(error["loc"][0]) if error["loc"] else ""
    source, key = origins.get(name, ("settings", name))
    message = plain_message(str(error["msg"]))
    if source != "default" and repr(values.get(name)) not in message:
        message += f" (got {values[name]!r})"
    return ConfigProblem(source, None, key, message)
