"""The conformance tests' spec loader fails loudly instead of skipping."""

from pathlib import Path

import pytest

from tests import openapi


def test_a_missing_spec_fails_the_test_and_names_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    absent = tmp_path / "absent.yaml"
    monkeypatch.setenv("SALADCLOUD_OPENAPI", str(absent))
    with pytest.raises(pytest.fail.Exception, match=str(absent)):
        openapi.load_spec()


def test_the_country_code_no_is_read_as_norway_not_false() -> None:
    enum = openapi.load_spec()["components"]["schemas"]["CountryCode"]["enum"]
    assert "no" in enum
    assert False not in enum
