"""The SaladCloud OpenAPI spec as JSON Schema validators, for every conformance test.

Tests get the spec from the ``saladcloud_spec`` fixture (``tests/reference_files.py``
finds the file, and skips or fails the test when there is none).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

# Only true/false are booleans there, so the country code `no` stays Norway.
from config.yaml_source import StrictBoolLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
API_PREFIX = "/api/public"

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@functools.cache
def load(path: Path) -> dict[str, Any]:
    """The spec at ``path``, read with YAML 1.2 booleans."""
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=StrictBoolLoader)
    assert isinstance(document, dict), f"{path} is not an OpenAPI document"
    return document


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    def date_time(value: object) -> bool:
        return not isinstance(value, str) or _RFC3339.match(value) is not None

    checker.checks("date-time")(date_time)
    return checker


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references reach the spec."""
    root = {**schema, "components": spec["components"]}
    return Draft202012Validator(root, format_checker=_format_checker())


def schema_errors(spec: dict[str, Any], schema: dict[str, Any], document: Any) -> list[str]:
    found = validator(spec, schema).iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found)


@functools.cache
def _templates(spec_id: int, paths: tuple[str, ...]) -> list[tuple[re.Pattern[str], str]]:
    compiled = []
    for template in paths:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        compiled.append((re.compile(f"^{pattern}$"), template))
    return compiled


def operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The spec's operation object for a request path under ``/api/public``."""
    relative = path.split(API_PREFIX, 1)[1]
    for pattern, template in _templates(id(spec), tuple(spec["paths"])):
        if pattern.match(relative):
            found = spec["paths"][template].get(method.lower())
            if found is not None:
                return dict(found)
    raise AssertionError(f"the spec has no operation {method} {relative}")


def response_content(spec: dict[str, Any], op: dict[str, Any], status: int) -> dict[str, Any]:
    """``{content type: schema}`` of the documented answer (``default`` if not listed)."""
    responses = op["responses"]
    response = resolve(spec, responses.get(str(status)) or responses["default"])
    return {kind: body["schema"] for kind, body in (response.get("content") or {}).items()}


def request_content(spec: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    body = resolve(spec, op["requestBody"])
    return {kind: content["schema"] for kind, content in body["content"].items()}


def component_errors(spec: dict[str, Any], schema_name: str, document: Any) -> list[str]:
    """Every way ``document`` breaks ``components.schemas.<schema_name>``."""
    return schema_errors(spec, {"$ref": f"#/components/schemas/{schema_name}"}, document)
