"""Typed models of the SaladCloud public API, as the node uses it.

Two directions, two attitudes:

* **Responses** (``ContainerGroup``, ``ContainerGroupInstance``, ...) are read
  leniently. The API is alpha and grows: extra fields are kept, not rejected, and
  enum-like fields are plain strings, so a new ``status`` or instance ``state`` value
  reaches the translation code (which maps what it knows and reports what it does
  not) instead of crashing the client. Required-by-spec fields we do not rely on
  are optional here for the same reason.
* **Requests** (``ContainerGroupPrototype`` and its parts) are what we send, so they
  are exact: field names and nesting of the spec, ``None`` meaning "leave out".
  Serialise them with :func:`request_json`. Bounds are enforced by the translation
  code, which can name the Kubernetes field a bad value came from; the simulator
  checks them again, as the real API would.

Field names are those of ``salad-cloud.yaml`` (``0.9.0-alpha.17``); the two hyphenated
ones (``scaling-actions``, ``scheduled-scaling-enabled``) are aliased.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

# --- enums the API documents (kept as plain strings in responses) -----------------

CONTAINER_GROUP_STATUSES = ("pending", "deploying", "running", "stopped", "succeeded", "failed")
INSTANCE_STATES = ("allocating", "downloading", "creating", "running", "stopping")

RestartPolicy = Literal["always", "on_failure", "never"]
Priority = Literal["high", "medium", "low", "batch"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def request_json(body: BaseModel) -> dict[str, Any]:
    """The JSON object to send for a request model: spec names, no unset fields."""
    return body.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- read model ---------------------------------------------------------------------


class InstanceStatusCounts(_Response):
    allocating_count: int = 0
    creating_count: int = 0
    running_count: int = 0
    stopping_count: int = 0


class ContainerGroupState(_Response):
    status: str
    """One of ``CONTAINER_GROUP_STATUSES``, or a value the API added since."""
    description: str | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None
    instance_status_counts: InstanceStatusCounts = Field(default_factory=InstanceStatusCounts)


class ResourceRequirements(_Response):
    cpu: int | None = None
    memory: int | None = None
    gpu_classes: list[str] = Field(default_factory=list)
    storage_amount: int | None = None
    shm_size: int | None = None


class Container(_Response):
    image: str
    resources: ResourceRequirements = Field(default_factory=ResourceRequirements)
    command: list[str] | None = None
    # Values may come from Kubernetes Secrets: never in a repr, so never in a log line.
    environment_variables: dict[str, str] = Field(default_factory=dict, repr=False)
    image_caching: bool | None = None
    hash: str | None = None
    size: int | None = None


class Networking(_Response):
    port: int | None = None
    protocol: str | None = None
    auth: bool | None = None
    dns: str | None = None


class ContainerGroup(_Response):
    id: str
    name: str
    display_name: str | None = None
    organization_name: str | None = None
    project_name: str | None = None
    container: Container
    current_state: ContainerGroupState
    restart_policy: str | None = None
    autostart_policy: bool | None = None
    replicas: int | None = None
    priority: str | None = None
    country_codes: list[str] = Field(default_factory=list)
    networking: Networking | None = None
    pending_change: bool | None = None
    version: int | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None


class ContainerGroupInstance(_Response):
    id: str
    machine_id: str | None = None
    state: str
    """One of ``INSTANCE_STATES``, or a value the API added since."""
    update_time: datetime | None = None
    version: int | None = None
    ready: bool | None = None
    started: bool | None = None
    deletion_cost: int | None = None
    pulling_progress: float | None = None


class GpuClassPrice(_Response):
    priority: str
    price: str


class GpuClass(_Response):
    id: str
    name: str
    prices: list[GpuClassPrice] = Field(default_factory=list)
    gpu_class_type: str | None = None
    is_high_demand: bool | None = None


class ContainerGroupsQuotas(_Response):
    container_replicas_quota: int
    container_replicas_used: int
    max_container_group_reallocations_per_minute: int | None = None
    max_container_group_recreates_per_minute: int | None = None
    max_container_group_restarts_per_minute: int | None = None


class Quotas(_Response):
    container_groups_quotas: ContainerGroupsQuotas
    create_time: datetime | None = None
    update_time: datetime | None = None


class SystemLog(_Response):
    event_name: str
    event_time: datetime
    instance_id: str | None = None
    machine_id: str | None = None
    resource_cpu: int | None = None
    resource_memory: int | None = None
    resource_gpu_class: str | None = None
    resource_storage_amount: int | None = None
    version: str | None = None


class LogEntryResource(_Response):
    type: str
    labels: dict[str, str] = Field(default_factory=dict)


class LogEntry(_Response):
    time: datetime
    receive_time: datetime | None = None
    severity: str | None = None
    resource: LogEntryResource
    text_log: str | None = None
    json_log: dict[str, Any] | None = None


class LogEntryCollection(_Response):
    items: list[LogEntry] = Field(default_factory=list)
    organization_name: str | None = None
    page_min_time: datetime | None = None
    page_max_time: datetime | None = None


# --- requests -------------------------------------------------------------------------


class LogEntryQuery(_Request):
    start_time: datetime
    end_time: datetime
    query: str
    page_size: int | None = None
    sort_order: Literal["asc", "desc"] | None = None


class CreateResources(_Request):
    cpu: int
    memory: int
    """Megabytes."""
    gpu_classes: list[str] | None = None
    """GPU class ids (uuids), not names."""
    storage_amount: int | None = None
    """Bytes."""
    shm_size: int | None = None
    """Megabytes."""


class RegistryBasic(_Request):
    username: str
    password: str


class RegistryDockerHub(_Request):
    username: str
    personal_access_token: str


class RegistryAwsEcr(_Request):
    access_key_id: str
    secret_access_key: str


class RegistryGcp(_Request):
    service_key: str


class RegistryAuthentication(_Request):
    """Exactly one member is set."""

    basic: RegistryBasic | None = None
    docker_hub: RegistryDockerHub | None = None
    aws_ecr: RegistryAwsEcr | None = None
    gcp_gar: RegistryGcp | None = None
    gcp_gcr: RegistryGcp | None = None


class LoggingAxiom(_Request):
    host: str
    api_token: str
    dataset: str


class DatadogTag(_Request):
    name: str
    value: str


class LoggingDatadog(_Request):
    host: str
    api_key: str
    tags: list[DatadogTag] | None = None


class HttpHeader(_Request):
    name: str
    value: str


class LoggingHttp(_Request):
    host: str
    port: int
    format: Literal["json", "json_lines"]
    compression: Literal["none", "gzip"]
    headers: list[HttpHeader] | None = None
    path: str | None = None
    user: str | None = None
    password: str | None = None


class LoggingNewRelic(_Request):
    host: str
    ingestion_key: str


class LoggingSplunk(_Request):
    host: str
    token: str


class LoggingTcp(_Request):
    host: str
    port: int


class ContainerLogging(_Request):
    """Exactly one provider is set."""

    axiom: LoggingAxiom | None = None
    datadog: LoggingDatadog | None = None
    http: LoggingHttp | None = None
    new_relic: LoggingNewRelic | None = None
    splunk: LoggingSplunk | None = None
    tcp: LoggingTcp | None = None


class CreateContainer(_Request):
    image: str
    resources: CreateResources
    command: list[str] | None = None
    # The next three carry Secret values and credentials: kept out of every repr.
    environment_variables: dict[str, str] | None = Field(default=None, repr=False)
    image_caching: bool | None = None
    priority: Priority | None = None
    """On create and patch the priority sits inside ``container``."""
    registry_authentication: RegistryAuthentication | None = Field(default=None, repr=False)
    logging: ContainerLogging | None = Field(default=None, repr=False)


class ProbeHttp(_Request):
    path: str
    port: int
    scheme: Literal["http", "https"]
    headers: list[HttpHeader]


class ProbeTcp(_Request):
    port: int


class ProbeGrpc(_Request):
    port: int
    service: str


class ProbeExec(_Request):
    command: list[str]


class Probe(_Request):
    """Exactly one of ``http``, ``tcp``, ``grpc``, ``exec`` is set."""

    failure_threshold: int
    initial_delay_seconds: int
    period_seconds: int
    success_threshold: int
    timeout_seconds: int
    http: ProbeHttp | None = None
    tcp: ProbeTcp | None = None
    grpc: ProbeGrpc | None = None
    exec: ProbeExec | None = None


class CreateNetworking(_Request):
    port: int
    protocol: Literal["http"] = "http"
    auth: bool
    load_balancer: Literal["round_robin", "least_number_of_connections"] | None = None
    client_request_timeout: int | None = None
    server_response_timeout: int | None = None
    single_connection_limit: bool | None = None


class ContainerGroupPrototype(_Request):
    name: str
    display_name: str | None = None
    container: CreateContainer
    autostart_policy: bool = True
    replicas: int = 1
    restart_policy: RestartPolicy
    country_codes: list[str] | None = None
    networking: CreateNetworking | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None


class ContainerGroupPatch(_Request):
    """A JSON merge-patch (RFC 7396); only the fields the node changes."""

    replicas: int | None = None
    display_name: str | None = None
    country_codes: list[str] | None = None
