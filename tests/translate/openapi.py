"""The SaladCloud OpenAPI spec as JSON Schema, to check create bodies against.

The spec is ``salad-cloud.yaml`` beside the project (``../shared/saladcloud``) or the
file ``$SALADCLOUD_OPENAPI`` names. Missing, it fails the tests that need it loudly:
a conformance check that silently skips checks nothing.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import (
    Draft202012Validator,
    FormatChecker,
)
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_VARIABLE = "SALADCLOUD_OPENAPI"
_DEFAULT_SPEC = Path(__file__).resolve().parents[3] / "shared" / "saladcloud" / "salad-cloud.yaml"
_SPEC_URI = "urn:saladcloud:openapi"
_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Yaml12BooleansLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """YAML 1.1 reads the country code ``no`` as False; only true/false are booleans here."""


_Yaml12BooleansLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
}
_Yaml12BooleansLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
)


def spec_path() -> Path:
    path = Path(os.environ.get(SPEC_VARIABLE, str(_DEFAULT_SPEC)))
    if not path.is_file():
        raise FileNotFoundError(
            f"SaladCloud OpenAPI spec not found at {path}; set ${SPEC_VARIABLE} to salad-cloud.yaml"
        )
    return path


@functools.cache
def spec() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as stream:
        loaded: dict[str, Any] = yaml.load(stream, Loader=_Yaml12BooleansLoader)
    return loaded


@functools.cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``components.schemas.<schema_name>``, formats (uuid) included."""
    registry: Registry[Any] = Registry().with_resource(
        _SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"},
        registry=registry,
        format_checker=FormatChecker(),
    )


def schema_errors(schema_name: str, instance: Any) -> list[str]:
    """Every way ``instance`` breaks the schema, as ``path: message`` lines."""
    return sorted(
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator(schema_name).iter_errors(instance)
    )
