"""``salad.com/logging-*`` annotations: where SaladCloud ships the container's logs.

One provider per pod (the API takes only one). Any annotation of a provider selects
it. Annotations are readable by anyone who may read the pod, so each secret-ish value
(token, key, password, headers) may instead come from a key of the Secret named by
``salad.com/logging-secret``; an annotation, when present, wins over the Secret.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nodes.saladcloud.models import (
    ContainerLogging,
    DatadogTag,
    HttpHeader,
    LoggingAxiom,
    LoggingDatadog,
    LoggingHttp,
    LoggingNewRelic,
    LoggingSplunk,
    LoggingTcp,
)
from nodes.translate.refusal import (
    CREATE_CONTAINER_CONFIG_ERROR,
    INVALID_ANNOTATION,
    Problems,
    annotation_field,
)
from nodes.translate.spec_bounds import (
    LOGGING_LIST_MAX,
    LOGGING_VALUE_MAX,
    PORT_MAX,
    PORT_MIN,
    check_text,
)

LOGGING_SECRET = "salad.com/logging-secret"  # noqa: S105 (an annotation name)

Kind = Literal["text", "port", "choice", "tags", "headers"]


@dataclass(frozen=True)
class _Setting:
    suffix: str
    """The annotation is ``salad.com/logging-<provider>-<suffix>``."""
    attribute: str
    """The field of the provider's request model."""
    kind: Kind = "text"
    required: bool = False
    stored_as: str | None = None
    """Key of the logging Secret that may hold the value instead of the annotation."""
    choices: tuple[str, ...] = ()
    default: str | None = None


_PROVIDERS: dict[str, tuple[str, tuple[_Setting, ...]]] = {
    # annotation word: (request attribute, settings)
    "axiom": (
        "axiom",
        (
            _Setting("host", "host", required=True),
            _Setting("dataset", "dataset", required=True),
            _Setting("api-token", "api_token", required=True, stored_as="axiom-api-token"),
        ),
    ),
    "datadog": (
        "datadog",
        (
            _Setting("host", "host", required=True),
            _Setting("api-key", "api_key", required=True, stored_as="datadog-api-key"),
            _Setting("tags", "tags", kind="tags"),
        ),
    ),
    "http": (
        "http",
        (
            _Setting("host", "host", required=True),
            _Setting("port", "port", kind="port", required=True),
            _Setting("path", "path"),
            _Setting(
                "format", "format", kind="choice", choices=("json", "json_lines"), default="json"
            ),
            _Setting(
                "compression",
                "compression",
                kind="choice",
                choices=("none", "gzip"),
                default="none",
            ),
            _Setting("user", "user"),
            _Setting("password", "password", stored_as="http-password"),
            _Setting("headers", "headers", kind="headers", stored_as="http-headers"),
        ),
    ),
    "new-relic": (
        "new_relic",
        (
            _Setting("host", "host", required=True),
            _Setting(
                "ingestion-key",
                "ingestion_key",
                required=True,
                stored_as="new-relic-ingestion-key",
            ),
        ),
    ),
    "splunk": (
        "splunk",
        (
            _Setting("host", "host", required=True),
            _Setting("token", "token", required=True, stored_as="splunk-token"),
        ),
    ),
    "tcp": (
        "tcp",
        (
            _Setting("host", "host", required=True),
            _Setting("port", "port", kind="port", required=True),
        ),
    ),
}

_MODELS: dict[str, type[Any]] = {
    "axiom": LoggingAxiom,
    "datadog": LoggingDatadog,
    "http": LoggingHttp,
    "new_relic": LoggingNewRelic,
    "splunk": LoggingSplunk,
    "tcp": LoggingTcp,
}


def _annotation(provider: str, setting: _Setting) -> str:
    return f"salad.com/logging-{provider}-{setting.suffix}"


LOGGING_ANNOTATIONS: frozenset[str] = frozenset(
    {LOGGING_SECRET}
    | {
        _annotation(provider, setting)
        for provider, (_, settings) in _PROVIDERS.items()
        for setting in settings
    }
)
"""Every logging annotation this node reads."""

LOGGING_SECRET_KEYS: tuple[str, ...] = tuple(
    setting.stored_as
    for _, settings in _PROVIDERS.values()
    for setting in settings
    if setting.stored_as is not None
)
"""The keys read from the Secret named by ``salad.com/logging-secret``."""


def logging_secret_name(annotations: Mapping[str, str]) -> str | None:
    """The Secret named by ``salad.com/logging-secret``, if any."""
    name = annotations.get(LOGGING_SECRET, "").strip()
    return name or None


@dataclass(frozen=True)
class _SecretSource:
    """The Secret named by ``salad.com/logging-secret``."""

    name: str
    data: Mapping[str, str] | None = dataclasses.field(repr=False)
    """``None`` when the Secret was not found (already reported)."""


def _secret_source(
    annotations: Mapping[str, str],
    secrets: Mapping[str, Mapping[str, str]],
    problems: Problems,
) -> _SecretSource | None:
    if LOGGING_SECRET not in annotations:
        return None
    name = logging_secret_name(annotations)
    if name is None:
        problems.add(INVALID_ANNOTATION, annotation_field(LOGGING_SECRET), "names no Secret")
        return None
    data = secrets.get(name)
    if data is None:
        problems.add(
            CREATE_CONTAINER_CONFIG_ERROR,
            annotation_field(LOGGING_SECRET),
            f'secret "{name}" not found',
            permanent=False,
        )
    return _SecretSource(name, data)


def container_logging(
    annotations: Mapping[str, str],
    secrets: Mapping[str, Mapping[str, str]],
    problems: Problems,
) -> ContainerLogging | None:
    """The ``logging`` of the create body the annotations ask for, or ``None``."""
    source = _secret_source(annotations, secrets, problems)
    selected = [
        provider
        for provider, (_, settings) in _PROVIDERS.items()
        if any(_annotation(provider, setting) in annotations for setting in settings)
    ]
    if len(selected) > 1:
        second = selected[1]
        clash = min(
            _annotation(second, setting)
            for setting in _PROVIDERS[second][1]
            if _annotation(second, setting) in annotations
        )
        problems.add(
            INVALID_ANNOTATION,
            annotation_field(clash),
            f"annotations of several logging providers ({', '.join(selected)}); "
            "SaladCloud takes only one",
        )
        return None
    if not selected:
        if source is not None:
            problems.add(
                INVALID_ANNOTATION,
                annotation_field(LOGGING_SECRET),
                "names a Secret, but no salad.com/logging-<provider>-* annotation "
                "selects a provider",
            )
        return None
    provider = selected[0]
    attribute, settings = _PROVIDERS[provider]
    values: dict[str, Any] = {}
    complete = True
    for setting in settings:
        ok, value = _setting_value(provider, setting, annotations, source, problems)
        complete = complete and ok
        if value is not None:
            values[setting.attribute] = value
    if not complete:
        return None
    if attribute == "datadog":
        values.setdefault("tags", [])  # required by the spec, even when empty
    return ContainerLogging.model_validate({attribute: _MODELS[attribute](**values)})


def _setting_value(
    provider: str,
    setting: _Setting,
    annotations: Mapping[str, str],
    source: _SecretSource | None,
    problems: Problems,
) -> tuple[bool, Any]:
    """(whether the setting is usable, its value or ``None`` when unset)."""
    name = _annotation(provider, setting)
    raw, field = annotations.get(name), annotation_field(name)
    if raw is None and setting.stored_as is not None and source is not None and source.data:
        raw = source.data.get(setting.stored_as)
        field = f"{annotation_field(LOGGING_SECRET)} key {setting.stored_as}"
    if raw is None:
        raw, field = setting.default, annotation_field(name)
    if raw is not None:
        value = _PARSERS[setting.kind](setting, raw, field, problems)
        return value is not None, value
    if not setting.required:
        return True, None
    if setting.stored_as is not None and source is not None:
        if source.data is not None:
            problems.add(
                CREATE_CONTAINER_CONFIG_ERROR,
                annotation_field(LOGGING_SECRET),
                f"couldn't find key {setting.stored_as} in Secret {source.name}, "
                f"and {name} is not set",
                permanent=False,
            )
        return False, None  # a missing Secret is already the problem
    hint = (
        f" (or key {setting.stored_as} of the Secret named by {LOGGING_SECRET})"
        if setting.stored_as
        else ""
    )
    problems.add(
        INVALID_ANNOTATION,
        annotation_field(name),
        f"is required by the {provider} logging provider{hint}",
    )
    return False, None


def _port(setting: _Setting, raw: str, field: str, problems: Problems) -> int | None:
    port = raw.strip()
    if not port.isdigit() or not PORT_MIN <= int(port) <= PORT_MAX:
        problems.add(INVALID_ANNOTATION, field, f"{port!r} is not a port number (1..65535)")
        return None
    return int(port)


def _choice(setting: _Setting, raw: str, field: str, problems: Problems) -> str | None:
    choice = raw.strip().lower()
    if choice not in setting.choices:
        problems.add(
            INVALID_ANNOTATION, field, f"{raw!r} is not one of {', '.join(setting.choices)}"
        )
        return None
    return choice


def _text(setting: _Setting, raw: str, field: str, problems: Problems) -> str | None:
    value = raw.strip()
    ok = check_text(
        value,
        field=field,
        what="the value",
        reason=INVALID_ANNOTATION,
        problems=problems,
        maximum=LOGGING_VALUE_MAX,
    )
    return value if ok else None


def _tags(setting: _Setting, raw: str, field: str, problems: Problems) -> list[DatadogTag] | None:
    """``name:value,name:value`` (Datadog's own tag syntax) into tags."""
    pairs: list[tuple[str, str, str]] = []
    for index, entry in enumerate(part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, colon, value = entry.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not name or not value:
            problems.add(
                INVALID_ANNOTATION, field, f"tag {index + 1} is not of the form name:value"
            )
            return None
        pairs.append((name, value, f"tag {index + 1}"))
    checked = _name_value_pairs(pairs, field, problems, "tags")
    return None if checked is None else [DatadogTag(name=n, value=v) for n, v in checked]


def _headers(
    setting: _Setting, raw: str, field: str, problems: Problems
) -> list[HttpHeader] | None:
    """A JSON object ``{"Name": "value"}`` into headers (values are never echoed)."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(value, str) for value in parsed.values()):
        problems.add(
            INVALID_ANNOTATION,
            field,
            'is not a JSON object of strings, like {"Authorization": "Bearer ..."}',
        )
        return None
    pairs = [(name, value, f"header {name!r}") for name, value in parsed.items()]
    checked = _name_value_pairs(pairs, field, problems, "headers")
    return None if checked is None else [HttpHeader(name=n, value=v) for n, v in checked]


def _name_value_pairs(
    pairs: list[tuple[str, str, str]], field: str, problems: Problems, noun: str
) -> list[tuple[str, str]] | None:
    """Each (name, value, what) checked as one line SaladCloud accepts, and their number
    within its list limit; None once a problem was reported."""
    for name, value, what in pairs:
        for text, part in ((name, f"the name of {what}"), (value, f"the value of {what}")):
            if not check_text(
                text,
                field=field,
                what=part,
                reason=INVALID_ANNOTATION,
                problems=problems,
                maximum=LOGGING_VALUE_MAX,
            ):
                return None
    if len(pairs) > LOGGING_LIST_MAX:
        problems.add(
            INVALID_ANNOTATION,
            field,
            f"{len(pairs)} {noun}; SaladCloud accepts at most {LOGGING_LIST_MAX}",
        )
        return None
    return [(name, value) for name, value, _ in pairs]


_PARSERS: dict[str, Callable[[_Setting, str, str, Problems], Any]] = {
    "text": _text,
    "port": _port,
    "choice": _choice,
    "tags": _tags,
    "headers": _headers,
}
