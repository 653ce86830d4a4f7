"""The projects file as written: what each key may hold, checked without any I/O.

Keys are Kubernetes-style camelCase; an unknown key is an error, so a typo such as
``pollIntervall`` cannot pass silently. Optional keys are ``None`` when absent, which
is what lets ``defaults`` and a node's own values merge (see ``config.resolve``).
Reading key files and environment variables is left to ``config.loading``.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Hashable
from typing import Annotated, Any, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from .country_codes import COUNTRY_CODES
from .kube_names import check_label, check_label_value, check_qualified_name, check_subdomain
from .quantities import parse_quantity

Priority = Literal["high", "medium", "low", "batch"]
TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]

DEFAULT_SALAD_API_URL = "https://api.salad.com/api/public"
DEFAULT_API_RATE_LIMIT = 240
"""Requests per minute per API key: SaladCloud's documented limit."""
MAX_PODS_PER_NODE = 100
"""SaladCloud lists at most 100 container groups per project, with no cursor: a node
with more pods than that could not see all its groups, so it is not allowed."""
MAX_COUNTRY_CODES = 500
MAX_GPU_CLASSES = 100

SALAD_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$"
"""SaladCloud's pattern of organization, project and container-group names."""
_SALAD_NAME = re.compile(SALAD_NAME_PATTERN)
_ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GPU_CLASS_NAME = re.compile(r"^[ -~]{2,63}$")


def fail_at(loc: tuple[str | int, ...], message: str, value: Any) -> NoReturn:
    """Raise a validation error at ``loc`` below the value being validated.

    A plain ``ValueError`` from a validator points at the whole container; this points
    at the offending entry, so the loader can give its line.
    """
    error = PydanticCustomError("config", message)
    raise ValidationError.from_exception_data(
        "config", [InitErrorDetails(type=error, loc=loc, input=value)]
    )


def _salad_name(value: str) -> str:
    if not _SALAD_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a SaladCloud name: 2-63 lowercase letters, digits or '-',"
            " starting with a letter and ending with a letter or digit"
        )
    return value


def _number_as_text(value: Any) -> Any:
    # ``pods: 100`` and ``cpu: 0.5`` are quantities too; YAML just made them numbers.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _capacity_quantity(value: str) -> str:
    if parse_quantity(value) < 0:
        raise ValueError(f"{value!r} is negative")
    return value


def _capacity(value: dict[str, str]) -> dict[str, str]:
    pods = value.get("pods")
    if pods is not None:
        count = parse_quantity(pods)
        if count != count.to_integral_value():
            fail_at(("pods",), f"{pods!r} is not a whole number of pods", pods)
        if count > MAX_PODS_PER_NODE:
            fail_at(
                ("pods",),
                f"{pods!r} is more than {MAX_PODS_PER_NODE}: SaladCloud lists at most"
                f" {MAX_PODS_PER_NODE} container groups per project, so one node cannot"
                " track more; add another project (node) instead",
                pods,
            )
    return value


def _country_code(value: str) -> str:
    if value not in COUNTRY_CODES:
        hint = " (use lowercase)" if value.lower() in COUNTRY_CODES else ""
        raise ValueError(f"{value!r} is not a country code SaladCloud accepts{hint}")
    return value


def _gpu_class(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        if not _GPU_CLASS_NAME.match(value):
            raise ValueError(
                f"{value!r} is neither a GPU class id (UUID) nor a GPU class name"
                " (2-63 printable ASCII characters)"
            ) from None
    return value


_H = TypeVar("_H", bound=Hashable)


def _unique(values: list[_H]) -> list[_H]:
    first_at: dict[_H, int] = {}
    for index, value in enumerate(values):
        if value in first_at:
            fail_at((index,), f"{value!r} is listed twice (also at [{first_at[value]}])", value)
        first_at[value] = index
    return values


def _unique_taints(taints: list[Taint]) -> list[Taint]:
    # The API server rejects two taints with the same key and effect on one Node.
    first_at: dict[tuple[str, str], int] = {}
    for index, taint in enumerate(taints):
        identity = (taint.key, taint.effect)
        if identity in first_at:
            fail_at(
                (index,),
                f"taint {taint.key}:{taint.effect} is listed twice (also at"
                f" [{first_at[identity]}])",
                taint.key,
            )
        first_at[identity] = index
    return taints


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine: 127.0.0.0/8, ::1 or ``localhost``."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r} must not have a query or fragment")
    if parts.username is not None or parts.password is not None:
        # It would be printed with the URL (check-config, errors); the key is the login.
        raise ValueError(f"{parts.scheme}://…@{parts.hostname}: a URL must not carry credentials")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"{value!r} has a port that is not a number in 1..65535") from None
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        # Every request carries the API key in a header: over http anyone on the path
        # reads it. The simulator is the one http server worth talking to, locally.
        raise ValueError(
            f"{value!r} would send the API key in clear text: use https://"
            " (http:// is accepted only for a loopback host, 127.0.0.0/8, ::1 or localhost,"
            " such as the simulator)"
        )
    # Paths are appended to it, so one canonical spelling keeps fingerprints stable.
    return value.rstrip("/")


def _some_namespace(values: list[str]) -> list[str]:
    if not values:
        raise ValueError(
            "lists no namespace, which would refuse every pod: list the namespaces whose"
            " pods this node serves, or leave the key out to serve every namespace"
        )
    return values


def _selector_values(requirement: LabelSelectorRequirement) -> LabelSelectorRequirement:
    # The rules Kubernetes applies to a LabelSelectorRequirement (ValidateLabelSelector).
    if requirement.operator in ("In", "NotIn") and not requirement.values:
        fail_at(
            ("values",),
            f"operator {requirement.operator} needs a non-empty list of values",
            requirement.values,
        )
    if requirement.operator in ("Exists", "DoesNotExist") and requirement.values is not None:
        fail_at(
            ("values",),
            f"operator {requirement.operator} takes no values: leave `values` out",
            requirement.values,
        )
    return requirement


def _env_var_name(value: str) -> str:
    if not _ENV_VAR_NAME.match(value):
        # Not echoed: a value that is not a variable name may well be the key itself.
        raise ValueError(
            "must be the NAME of an environment variable (letters, digits and '_', not"
            " starting with a digit) that holds the key; the key itself never goes in"
            " this file"
        )
    return value


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


SaladName = Annotated[str, AfterValidator(_salad_name)]
NodeName = Annotated[str, AfterValidator(check_subdomain)]
QualifiedName = Annotated[str, AfterValidator(check_qualified_name)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
NamespaceName = Annotated[str, AfterValidator(check_label)]
Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_capacity_quantity)]
Capacity = Annotated[dict[QualifiedName, Quantity], AfterValidator(_capacity)]
CountryCodes = Annotated[
    list[Annotated[str, AfterValidator(_country_code)]],
    Field(max_length=MAX_COUNTRY_CODES),
    AfterValidator(_unique),
]
GpuClasses = Annotated[
    list[Annotated[str, AfterValidator(_gpu_class)]],
    Field(max_length=MAX_GPU_CLASSES),
    AfterValidator(_unique),
]
ApiUrl = Annotated[str, AfterValidator(_api_url)]
EnvVarName = Annotated[str, AfterValidator(_env_var_name)]
KeyFilePath = Annotated[str, AfterValidator(_non_empty)]
RateLimitShare = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# Whole numbers keep the balance exact: with unit weights every replica gets the same
# count, give or take one.
NodeWeight = Annotated[int, Field(ge=1, le=1000, strict=True)]
PollInterval = Annotated[float, Field(ge=1, allow_inf_nan=False)]
# Below 2 a minute no token bucket can keep a burst and a refill both whole.
ApiRateLimit = Annotated[int, Field(ge=2)]


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel)


class Taint(_FileModel):
    """A Kubernetes node taint."""

    key: QualifiedName
    value: LabelValue = ""
    effect: TaintEffect


Taints = Annotated[list[Taint], AfterValidator(_unique_taints)]
AllowedNamespaces = Annotated[
    list[NamespaceName], AfterValidator(_some_namespace), AfterValidator(_unique)
]


class LabelSelectorRequirement(_FileModel):
    """One ``matchExpressions`` entry of a Kubernetes label selector."""

    key: QualifiedName
    operator: SelectorOperator
    values: list[LabelValue] | None = None


class LabelSelector(_FileModel):
    """A Kubernetes label selector; every requirement must hold, and an empty selector
    matches everything, as in Kubernetes."""

    match_labels: dict[QualifiedName, LabelValue] | None = None
    match_expressions: (
        list[Annotated[LabelSelectorRequirement, AfterValidator(_selector_values)]] | None
    ) = None

    def as_kubernetes(self) -> dict[str, Any]:
        """The selector as the Kubernetes API writes it (``matchLabels``, ``matchExpressions``)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class NodeDefaults(_FileModel):
    """What ``defaults`` may set; every node may set the same keys for itself."""

    labels: dict[QualifiedName, LabelValue] | None = None
    taints: Taints | None = None
    # Strict: pydantic would read "off", "no", 0 or "false" as False and silently drop
    # the provider taint; only YAML's own true and false are booleans here.
    provider_taint: StrictBool | None = None
    capacity: Capacity | None = None
    rate_limit_share: RateLimitShare | None = None
    weight: NodeWeight | None = None
    poll_interval: PollInterval | None = None
    default_country_codes: CountryCodes | None = None
    default_gpu_classes: GpuClasses | None = None
    default_priority: Priority | None = None
    allowed_namespaces: AllowedNamespaces | None = None
    namespace_selector: LabelSelector | None = None


class NodeEntry(NodeDefaults):
    """One entry of ``nodes``: one SaladCloud project served as one Kubernetes Node."""

    name: NodeName
    organization: SaladName
    project: SaladName
    api_key_file: KeyFilePath | None = None
    api_key_env: EnvVarName | None = None
    salad_api_url: ApiUrl | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> NodeEntry:
        problem = key_source_problem(self.api_key_file, self.api_key_env)
        if problem is not None:
            raise ValueError(problem)
        return self


def key_source_problem(api_key_file: object, api_key_env: object) -> str | None:
    """Why a node's key sources are not exactly one, if they are not."""
    if api_key_file is None and api_key_env is None:
        return "set apiKeyFile or apiKeyEnv to say where this node's API key is"
    if api_key_file is not None and api_key_env is not None:
        return "set only one of apiKeyFile and apiKeyEnv, not both"
    return None


class ProjectsFile(_FileModel):
    """The whole projects file."""

    salad_api_url: ApiUrl = DEFAULT_SALAD_API_URL
    api_rate_limit: ApiRateLimit = DEFAULT_API_RATE_LIMIT
    defaults: NodeDefaults = Field(default_factory=NodeDefaults)
    nodes: list[NodeEntry]


FILE_KEYS: frozenset[str] = frozenset(
    field.alias or name
    for model in (
        Taint,
        LabelSelector,
        LabelSelectorRequirement,
        NodeDefaults,
        NodeEntry,
        ProjectsFile,
    )
    for name, field in model.model_fields.items()
)
"""Every key the file may contain, for "did you mean" hints."""
