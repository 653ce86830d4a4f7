"""Request bodies as the spec bounds them, checked the way the real API would.

These are strict mirrors of the spec's request schemas (``ContainerGroupPrototype``,
``ContainerGroupPatch``, ``ContainerGroupInstancePatch``, ``LogEntryQuery``):
types are not coerced (``"2"`` is not a CPU count, ``1`` is not ``true``), every
bound and pattern of ``salad-cloud.yaml`` 0.9.0-alpha.17 applies, and a field the
spec does not know is refused. A refusal names the field by its path
(``container.resources.cpu``, ``container.command[2]``) so the client's error is
actionable.

An optional member is either absent or a value: ``null`` is taken only where the spec's
schema allows it (``command``, the probes, ``aws_ecr``, the HTTP logging credentials
and, in a patch, whatever merge-patch may remove). Elsewhere ``X | None = None`` would
let an explicit ``null`` through, so those members are ``Omittable[X]``.

Beyond the schema, as the API documents in prose: exactly one logging provider, one
registry-authentication member and one probe mechanism. One deliberate leniency:
an HTTP probe may have an empty ``headers`` list (the spec says at least one, but
the official docs' example and the Go virtual kubelet send ``[]``, which the live
API is reported to accept, see NOTES.md section 3).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from config.country_codes import COUNTRY_CODES
from config.schema import SALAD_NAME_PATTERN

from ..models import Priority, RestartPolicy
from .problems import ApiProblem

# The spec's ``^.*$``: JSON Schema patterns are ECMA-262, where ``.`` matches no line
# terminator; pydantic's Rust regex would let ``\r``, U+2028 and U+2029 through.
_LINE = r"^[^\n\r\u2028\u2029]*$"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_CRON = r"^([0-9A-Za-z*/,-]+)([\t ]+[0-9A-Za-z*/,-]+){4}$"


def _present_not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null (leave the field out instead)")
    return value


_T = TypeVar("_T")
Omittable = Annotated[_T | None, BeforeValidator(_present_not_null)]
"""A member the request may leave out but not set to ``null`` (the default ``None``
stands for "absent" and is never validated)."""


def _country(code: str) -> str:
    if code not in COUNTRY_CODES:
        raise ValueError(f"{code!r} is not a country code SaladCloud knows")
    return code


Name = Annotated[str, StringConstraints(min_length=2, max_length=63, pattern=SALAD_NAME_PATTERN)]
DisplayName = Annotated[
    str, StringConstraints(min_length=2, max_length=63, pattern=r"^[ ,-.0-9A-Za-z]+$")
]
Uuid = Annotated[str, StringConstraints(pattern=_UUID)]
Country = Annotated[str, AfterValidator(_country)]
Text1k = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=_LINE)]
Text10k = Annotated[str, StringConstraints(min_length=1, max_length=10000, pattern=_LINE)]
Secret10k = Annotated[str, StringConstraints(min_length=1, max_length=10000)]
Port = Annotated[int, Field(ge=1, le=65535)]
Replicas = Annotated[int, Field(ge=0, le=500)]
Cpu = Annotated[int, Field(ge=1, le=1024)]
Memory = Annotated[int, Field(ge=1024, le=1073741824)]
ShmSize = Annotated[int, Field(ge=64, le=1073741824)]
Storage = Annotated[int, Field(ge=1073741824, le=1125899906842624)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _exactly_one(model: BaseModel, what: str) -> None:
    chosen = [name for name in type(model).model_fields if getattr(model, name) is not None]
    members = [name for name in type(model).model_fields]
    if len(chosen) != 1:
        raise ValueError(f"exactly one {what} must be set (one of {', '.join(members)})")


# --- probes -----------------------------------------------------------------------------


class ProbeHttpHeader(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=_LINE)]
    value: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=_LINE)]


class ProbeHttp(_Strict):
    headers: Annotated[list[ProbeHttpHeader], Field(max_length=50)]
    path: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=_LINE)]
    port: Annotated[int, Field(ge=0, le=65536)]
    scheme: Literal["http", "https"]


class ProbeTcp(_Strict):
    port: Annotated[int, Field(ge=0, le=65535)]


class ProbeGrpc(_Strict):
    port: Annotated[int, Field(ge=0, le=65536)]
    service: Annotated[str, StringConstraints(min_length=0, max_length=1024, pattern=_LINE)]


class ProbeExec(_Strict):
    command: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=_LINE)]],
        Field(min_length=1, max_length=100),
    ]


class Probe(_Strict):
    """Liveness, readiness and startup probes share bounds; only their defaults differ."""

    exec: Omittable[ProbeExec] = None
    grpc: Omittable[ProbeGrpc] = None
    http: Omittable[ProbeHttp] = None
    tcp: Omittable[ProbeTcp] = None
    failure_threshold: Annotated[int, Field(ge=1, le=20)]
    initial_delay_seconds: Annotated[int, Field(ge=0, le=1200)]
    period_seconds: Annotated[int, Field(ge=1, le=120)]
    success_threshold: Annotated[int, Field(ge=1, le=10)]
    timeout_seconds: Annotated[int, Field(ge=1, le=60)]

    @model_validator(mode="after")
    def _one_mechanism(self) -> Probe:
        chosen = [m for m in ("exec", "grpc", "http", "tcp") if getattr(self, m) is not None]
        if len(chosen) != 1:
            raise ValueError("exactly one probe mechanism must be set (exec, grpc, http or tcp)")
        return self


# --- logging -------------------------------------------------------------------------------


class LoggingAxiom(_Strict):
    api_token: Text1k
    dataset: Text1k
    host: Text1k


class DatadogTag(_Strict):
    name: Text1k
    value: Text1k


class LoggingDatadog(_Strict):
    api_key: Text1k
    host: Text1k
    tags: Annotated[list[DatadogTag], Field(max_length=1000)] | None


class LoggingHttpHeader(_Strict):
    name: Text1k
    value: Text1k


class CreateLoggingHttp(_Strict):
    compression: Literal["none", "gzip"]
    format: Literal["json", "json_lines"]
    headers: Omittable[Annotated[list[LoggingHttpHeader], Field(max_length=1000)]] = None
    host: Text1k
    password: Text1k | None = None
    path: Text1k | None = None
    port: Port
    user: Text1k | None = None


class UpdateLoggingHttp(CreateLoggingHttp):
    headers: Annotated[list[LoggingHttpHeader], Field(max_length=1000)] | None


class LoggingNewRelic(_Strict):
    host: Text1k
    ingestion_key: Text1k


class LoggingSplunk(_Strict):
    host: Text1k
    token: Text1k


class LoggingTcp(_Strict):
    host: Text1k
    port: Port


class CreateLogging(_Strict):
    axiom: Omittable[LoggingAxiom] = None
    datadog: Omittable[LoggingDatadog] = None
    http: Omittable[CreateLoggingHttp] = None
    new_relic: Omittable[LoggingNewRelic] = None
    splunk: Omittable[LoggingSplunk] = None
    tcp: Omittable[LoggingTcp] = None

    @model_validator(mode="after")
    def _one_provider(self) -> CreateLogging:
        _exactly_one(self, "logging provider")
        return self


class UpdateLogging(CreateLogging):
    http: Omittable[UpdateLoggingHttp] = None


# --- registry authentication -------------------------------------------------------------


class RegistryBasic(_Strict):
    username: Text10k
    password: Text10k


class RegistryDockerHub(_Strict):
    username: Text10k
    personal_access_token: Text10k


class RegistryAwsEcr(_Strict):
    access_key_id: Text10k
    secret_access_key: Text10k


class RegistryGcp(_Strict):
    service_key: Secret10k


class RegistryAuthentication(_Strict):
    aws_ecr: RegistryAwsEcr | None = None
    basic: Omittable[RegistryBasic] = None
    docker_hub: Omittable[RegistryDockerHub] = None
    gcp_gar: Omittable[RegistryGcp] = None
    gcp_gcr: Omittable[RegistryGcp] = None

    @model_validator(mode="after")
    def _one_member(self) -> RegistryAuthentication:
        _exactly_one(self, "registry authentication")
        return self


# --- the container ---------------------------------------------------------------------------


class CreateResources(_Strict):
    cpu: Cpu
    gpu_classes: Omittable[Annotated[list[Uuid], Field(max_length=100)]] = None
    memory: Memory
    shm_size: Omittable[ShmSize] = None
    storage_amount: Omittable[Storage] = None


class UpdateResources(_Strict):
    cpu: Cpu | None = None
    gpu_classes: Annotated[list[Uuid], Field(max_length=100)] | None = None
    memory: Memory | None = None
    shm_size: ShmSize | None = None
    storage_amount: Storage | None = None


UpdateImage = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=_LINE)]
EnvValue = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=_LINE)]


class CreateContainer(_Strict):
    command: (
        Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=_LINE)]],
            Field(max_length=100),
        ]
        | None
    ) = None
    environment_variables: Omittable[dict[str, EnvValue]] = None
    image: Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=_LINE)]
    image_caching: Omittable[bool] = None
    logging: Omittable[CreateLogging] = None
    priority: Omittable[Priority] = None
    registry_authentication: Omittable[RegistryAuthentication] = None
    resources: CreateResources


class UpdateContainer(_Strict):
    command: (
        Annotated[
            list[Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=_LINE)]],
            Field(max_length=100),
        ]
        | None
    ) = None
    environment_variables: Omittable[dict[str, EnvValue]] = None
    image: UpdateImage | None = None
    image_caching: Omittable[bool] = None
    logging: UpdateLogging | None = None
    priority: Omittable[Priority] = None
    registry_authentication: Omittable[RegistryAuthentication] = None
    resources: UpdateResources | None = None


# --- the group -----------------------------------------------------------------------------


class CreateNetworking(_Strict):
    auth: bool
    client_request_timeout: Omittable[Annotated[int, Field(ge=1, le=100000)]] = None
    load_balancer: Omittable[Literal["round_robin", "least_number_of_connections"]] = None
    port: Port
    protocol: Literal["http"]
    server_response_timeout: Omittable[Annotated[int, Field(ge=1, le=100000)]] = None
    single_connection_limit: Omittable[bool] = None


class UpdateNetworking(_Strict):
    port: Port | None = None


class QueueConnection(_Strict):
    path: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=_LINE)]
    port: Port
    queue_name: Name


class QueueAutoscaler(_Strict):
    desired_queue_length: Annotated[int, Field(ge=1, le=100)]
    max_downscale_per_minute: Omittable[Annotated[int, Field(ge=1, le=100)]] = None
    max_replicas: Annotated[int, Field(ge=1, le=500)]
    max_upscale_per_minute: Omittable[Annotated[int, Field(ge=1, le=100)]] = None
    min_replicas: Annotated[int, Field(ge=0, le=100)]
    polling_period: Omittable[Annotated[int, Field(ge=15, le=1800)]] = None


class ScalingAction(_Strict):
    replicas: Replicas
    schedule: Annotated[str, StringConstraints(pattern=_CRON)]


Countries = Annotated[list[Country], Field(min_length=1, max_length=500)]
ScalingActions = Annotated[list[ScalingAction], Field(max_length=100)]


class ContainerGroupPrototype(_Strict):
    autostart_policy: bool
    container: CreateContainer
    country_codes: Omittable[Countries] = None
    display_name: Omittable[DisplayName] = None
    liveness_probe: Probe | None = None
    name: Name
    networking: Omittable[CreateNetworking] = None
    queue_autoscaler: Omittable[QueueAutoscaler] = None
    queue_connection: Omittable[QueueConnection] = None
    readiness_probe: Probe | None = None
    replicas: Replicas
    restart_policy: RestartPolicy
    scaling_actions: Omittable[ScalingActions] = Field(default=None, alias="scaling-actions")
    scheduled_scaling_enabled: Omittable[bool] = Field(
        default=None, alias="scheduled-scaling-enabled"
    )
    startup_probe: Probe | None = None


class ContainerGroupPatch(_Strict):
    container: UpdateContainer | None = None
    country_codes: Countries | None = None
    display_name: DisplayName | None = None
    liveness_probe: Probe | None = None
    networking: Omittable[UpdateNetworking] = None
    queue_autoscaler: Omittable[QueueAutoscaler] = None
    readiness_probe: Probe | None = None
    replicas: Replicas | None = None
    scaling_actions: Omittable[ScalingActions] = Field(default=None, alias="scaling-actions")
    scheduled_scaling_enabled: Omittable[bool] = Field(
        default=None, alias="scheduled-scaling-enabled"
    )
    startup_probe: Probe | None = None


class ContainerGroupInstancePatch(_Strict):
    deletion_cost: Annotated[int, Field(ge=0, le=100000)] | None = None


class LogEntryQuery(_Strict):
    end_time: AwareDatetime
    page_size: Omittable[Annotated[int, Field(ge=1, le=100)]] = None
    query: Annotated[str, StringConstraints(min_length=0, max_length=20000)]
    sort_order: Omittable[Literal["desc", "asc"]] = None
    start_time: AwareDatetime


# --- checking a body -----------------------------------------------------------------------

_Body = TypeVar("_Body", bound=BaseModel)

_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def field_path(location: tuple[int | str, ...]) -> str:
    """``("container", "command", 2)`` -> ``container.command[2]``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def parse_json(raw: bytes) -> Any:
    """The request's JSON document, or a 400 saying it is none."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise ApiProblem(400, "Bad Request", "the request body is not valid JSON") from None


def check(model: type[_Body], document: Any) -> _Body:
    """The document as ``model``, or a 400 whose detail names every offending field."""
    if not isinstance(document, dict):
        raise ApiProblem(400, "Bad Request", "the request body must be a JSON object")
    try:
        # Through JSON, so strict mode judges JSON types (a date-time is a string there).
        return model.model_validate_json(json.dumps(document), strict=True)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            path = field_path(tuple(error["loc"])) or "body"
            message = _MESSAGES.get(error["type"], str(error["msg"]).removeprefix("Value error, "))
            problems.append(f"{path}: {message}")
        detail = "; ".join(problems)
        if len(detail) > 2000:
            detail = detail[:1999] + "…"
        raise ApiProblem(400, "Bad Request", detail) from None
