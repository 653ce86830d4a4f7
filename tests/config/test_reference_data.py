"""Data copied from elsewhere stays in step with its source."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from config import ProcessSettings
from config.country_codes import COUNTRY_CODES
from config.schema import FILE_KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_country_codes_are_the_specs_enum(saladcloud_spec: dict[str, Any]) -> None:
    spec = saladcloud_spec

    assert frozenset(spec["components"]["schemas"]["CountryCode"]["enum"]) == COUNTRY_CODES


def test_the_reference_documents_every_key_of_the_projects_file() -> None:
    documented = set(re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", DOCS.read_text()))

    assert FILE_KEYS - documented == set()


def test_the_reference_documents_every_process_setting() -> None:
    text = DOCS.read_text()

    for name in ProcessSettings.model_fields:
        assert ProcessSettings.env_var(name) in text
        assert ProcessSettings.flag(name) in text
