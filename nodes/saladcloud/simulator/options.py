"""What a simulator run is told: projects, keys, limits, speed, seed and faults.

The same options come from ``salad-vk simulate`` flags or from a YAML file given
with ``--config``; the YAML keys are the flag names without the dashes in front
(``rate-limit: 20``, ``project: [acme/demo]``), and a flag given on the command line
wins over the file. Repeatable flags take a list in YAML (a single string is
accepted too).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from config import parse_listen_address
from config.schema import SALAD_NAME_PATTERN
from config.yaml_source import StrictBoolLoader

_NAME = re.compile(SALAD_NAME_PATTERN)
_GPU_NAME = re.compile(r"^[ -~]{2,63}$")
_EXIT_RULE = re.compile(r"^(?P<pattern>.+)=(?P<code>-?\d+)@(?P<after>\d+(?:\.\d+)?)$")
_STORM = re.compile(r"^(?P<start>\d+(?:\.\d+)?)\+(?P<length>\d+(?:\.\d+)?)$")

DEFAULT_PROJECT = "salad-vk/demo"
DEFAULT_API_KEY = "simulator-key"
DEFAULT_LISTEN = "127.0.0.1:8787"


class OptionsError(ValueError):
    """Options that cannot describe a simulator run; the message names the option."""


@dataclass(frozen=True)
class ProjectRef:
    organization: str
    project: str

    def __str__(self) -> str:
        return f"{self.organization}/{self.project}"


@dataclass(frozen=True)
class ExitRule:
    """Containers of images matching ``pattern`` exit with ``code`` after running ``after`` s."""

    pattern: str
    code: int
    after: float

    def matches(self, image: str) -> bool:
        return fnmatch.fnmatchcase(image, self.pattern)


@dataclass(frozen=True)
class Storm:
    """Every request is answered 429 from ``start`` to ``start + length`` wall seconds."""

    start: float
    length: float


def _listify(value: Any) -> Any:
    if isinstance(value, str | int | float):
        return [value]
    return value


class SimulatorOptions(BaseModel):
    """Every setting of a run; field aliases are the ``salad-vk simulate`` flag names."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    listen: str = DEFAULT_LISTEN
    projects: list[str] = Field(default_factory=lambda: [DEFAULT_PROJECT], alias="project")
    api_keys: list[str] = Field(default_factory=lambda: [DEFAULT_API_KEY], alias="api-key")
    rate_limit: int = Field(default=240, ge=1, alias="rate-limit")
    seed: int = 0
    time_scale: float = Field(default=1.0, gt=0.0, alias="time-scale")
    gpu_classes: list[str] = Field(default_factory=list, alias="gpu-class")
    replica_quota: int = Field(default=100, ge=0, alias="replica-quota")
    fail_images: list[str] = Field(default_factory=list, alias="fail-image")
    exit_images: list[str] = Field(default_factory=list, alias="exit-image")
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, alias="error-rate")
    throttle_rate: float = Field(default=0.0, ge=0.0, le=1.0, alias="throttle-rate")
    drop_rate: float = Field(default=0.0, ge=0.0, le=1.0, alias="drop-rate")
    latency: float = Field(default=0.0, ge=0.0, le=60.0)
    interrupt_rate: float = Field(default=0.0, ge=0.0, alias="interrupt-rate")
    log_rate: float = Field(default=0.5, ge=0.0, le=1000.0, alias="log-rate")
    """Lines each running instance writes per wall-clock second."""
    log_lag: float = Field(default=1.0, ge=0.0, le=60.0, alias="log-lag")
    """Longest delay, in seconds, between a line's ``time`` and its ``receive_time``."""
    storms: list[str] = Field(default_factory=list, alias="storm")
    retry_after: bool = Field(default=False, alias="retry-after")

    @field_validator(
        "projects",
        "api_keys",
        "gpu_classes",
        "fail_images",
        "exit_images",
        "storms",
        mode="before",
    )
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _listify(value)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen_address(value)
        return value

    @field_validator("projects")
    @classmethod
    def _check_projects(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one project is needed")
        for text in value:
            parse_project(text)
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one API key is needed")
        if any(not key or key != key.strip() for key in value):
            raise ValueError("API keys cannot be empty or start or end with whitespace")
        return value

    @field_validator("gpu_classes")
    @classmethod
    def _check_gpu_classes(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _GPU_NAME.match(name):
                raise ValueError(f"GPU class name {name!r} is not 2-63 printable ASCII characters")
        if len(set(value)) != len(value):
            raise ValueError("GPU class names must be unique")
        return value

    @field_validator("exit_images")
    @classmethod
    def _check_exit_images(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_exit_rule(text)
        return value

    @field_validator("storms")
    @classmethod
    def _check_storms(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_storm(text)
        return value

    # --- parsed views ----------------------------------------------------------------

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen_address(self.listen)

    @property
    def project_refs(self) -> list[ProjectRef]:
        return [parse_project(text) for text in self.projects]

    @property
    def exit_rules(self) -> list[ExitRule]:
        return [parse_exit_rule(text) for text in self.exit_images]

    @property
    def storm_windows(self) -> list[Storm]:
        return [parse_storm(text) for text in self.storms]


def parse_project(text: str) -> ProjectRef:
    organization, sep, project = text.partition("/")
    if not sep or not _NAME.match(organization) or not _NAME.match(project):
        raise ValueError(
            f"project {text!r} is not ORGANIZATION/PROJECT with SaladCloud names "
            "(2-63 lowercase letters, digits and dashes, starting with a letter)"
        )
    return ProjectRef(organization, project)


def parse_exit_rule(text: str) -> ExitRule:
    match = _EXIT_RULE.match(text)
    if match is None:
        raise ValueError(f"exit rule {text!r} is not IMAGE-PATTERN=EXIT-CODE@SECONDS")
    return ExitRule(match["pattern"], int(match["code"]), float(match["after"]))


def parse_storm(text: str) -> Storm:
    match = _STORM.match(text)
    if match is None:
        raise ValueError(f"storm {text!r} is not START+SECONDS (wall seconds after start)")
    return Storm(float(match["start"]), float(match["length"]))


def load_options(
    config: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> SimulatorOptions:
    """Options from a YAML file (optional) with flag values laid over it."""
    values: dict[str, Any] = {}
    if config is not None:
        try:
            text = config.read_text(encoding="utf-8")
            document = yaml.load(text, Loader=StrictBoolLoader)  # noqa: S506 - a SafeLoader
        except OSError as exc:
            raise OptionsError(f"cannot read {config}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise OptionsError(f"{config} is not valid YAML: {exc}") from None
        if document is None:
            document = {}
        if not isinstance(document, dict):
            raise OptionsError(f"{config} must hold a mapping of option names to values")
        values.update(document)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    try:
        return SimulatorOptions.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in error["loc"]) or "options"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise OptionsError("; ".join(problems)) from None
