"""Create bodies are checked against SaladCloud's spec in a test of their own.

A translation test marked ``spec_checked`` runs twice: ``[translated]`` as written, and
``[spec]`` with every create body it builds (through ``pods.create_body``) validated
against the spec's ``ContainerGroupPrototype``. The translation's own assertions never
need the spec, so a clone without it runs them all and skips only the ``[spec]`` runs
(``tests/reference_files.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.openapi import component_errors

from .pods import BODY_CHECK

TRANSLATED, SPEC = "translated", "spec"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("spec_checked") is not None:
        metafunc.parametrize("create_body_check", [TRANSLATED, SPEC], indirect=True)


@pytest.fixture(autouse=True)
def create_body_check(request: pytest.FixtureRequest) -> Iterator[str]:
    mode = getattr(request, "param", TRANSLATED)
    if mode != SPEC:
        yield mode
        return
    spec: dict[str, Any] = request.getfixturevalue("saladcloud_spec")
    checked: list[dict[str, Any]] = []

    def check(body: dict[str, Any]) -> None:
        assert component_errors(spec, "ContainerGroupPrototype", body) == [], body
        checked.append(body)

    token = BODY_CHECK.set(check)
    try:
        yield mode
    finally:
        BODY_CHECK.reset(token)
    assert checked, "marked spec_checked, but the test built no create body to check"
