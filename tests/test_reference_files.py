"""Reference files: found by variable or beside the clone, else a skip (a failure in CI)."""

from pathlib import Path
from typing import Any

import pytest

from tests import reference_files
from tests.reference_files import KEDA_CRDS, SALADCLOUD_OPENAPI, ReferenceFile


def test_the_country_code_no_is_read_as_norway_not_false(saladcloud_spec: dict[str, Any]) -> None:
    enum = saladcloud_spec["components"]["schemas"]["CountryCode"]["enum"]
    assert "no" in enum
    assert False not in enum


@pytest.mark.parametrize("reference", [SALADCLOUD_OPENAPI, KEDA_CRDS], ids=lambda r: r.variable)
def test_the_variable_wins_over_the_shared_folder(reference: ReferenceFile, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.yaml"
    chosen.write_text("{}\n")

    assert reference.files({reference.variable: str(chosen)}) == [chosen]


def test_the_variable_may_name_the_folder_holding_the_files(tmp_path: Path) -> None:
    (tmp_path / "keda.sh_triggerauthentications.yaml").write_text("{}\n")
    (tmp_path / "keda.sh_scaledobjects.yaml").write_text("{}\n")
    (tmp_path / "README.md").write_text("not a CRD\n")
    (tmp_path / "salad-cloud.yaml").write_text("{}\n")

    assert [p.name for p in KEDA_CRDS.files({"KEDA_CRDS": str(tmp_path)})] == [
        "keda.sh_scaledobjects.yaml",
        "keda.sh_triggerauthentications.yaml",
    ]
    assert SALADCLOUD_OPENAPI.files({"SALADCLOUD_OPENAPI": str(tmp_path)}) == [
        tmp_path / "salad-cloud.yaml"
    ]


def test_without_the_variable_the_shared_folder_beside_the_repository_is_used() -> None:
    repository = Path(__file__).resolve().parents[1]

    path, where = SALADCLOUD_OPENAPI.location({})

    assert path == repository.parent / "shared" / "saladcloud" / "salad-cloud.yaml"
    assert "$SALADCLOUD_OPENAPI is not set" in where


@pytest.mark.parametrize("value", ["", "0"])
def test_a_missing_file_skips_the_test_naming_the_file(tmp_path: Path, value: str) -> None:
    absent = tmp_path / "absent.yaml"
    environ = {"SALADCLOUD_OPENAPI": str(absent), reference_files.REQUIRE: value}

    with pytest.raises(pytest.skip.Exception, match="needs the SaladCloud OpenAPI spec"):
        reference_files.files_or_skip(SALADCLOUD_OPENAPI, environ)


@pytest.mark.parametrize("value", ["1", "true"])
def test_when_reference_files_are_required_a_missing_one_fails_the_test(
    tmp_path: Path, value: str
) -> None:
    absent = tmp_path / "absent"
    environ = {"KEDA_CRDS": str(absent), reference_files.REQUIRE: value}

    with pytest.raises(pytest.fail.Exception, match=str(absent)):
        reference_files.files_or_skip(KEDA_CRDS, environ)


def test_the_summary_names_the_missing_file_once_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent_spec = tmp_path / "absent.yaml"
    monkeypatch.setenv("SALADCLOUD_OPENAPI", str(absent_spec))
    monkeypatch.delenv(reference_files.REQUIRE, raising=False)
    reason = SALADCLOUD_OPENAPI.missing({"SALADCLOUD_OPENAPI": str(absent_spec)})
    skipped = [_Skipped(reason), _Skipped(reason), _Skipped("some other reason")]

    lines = list(reference_files.summary_lines({SALADCLOUD_OPENAPI: reason}, {"skipped": skipped}))

    assert lines[0] == (
        f"the SaladCloud OpenAPI spec: not found at $SALADCLOUD_OPENAPI={absent_spec}; "
        "2 test(s) skipped"
    )
    assert any("raw.githubusercontent.com/SaladTechnologies" in line for line in lines)
    assert lines[-1] == (
        "CI sets SALAD_VK_REQUIRE_REFERENCE_FILES=1, which turns these skips into failures."
    )


class _Skipped:
    """The part of a skipped test's report the summary reads."""

    def __init__(self, reason: str) -> None:
        self.longrepr = ("tests/reference_files.py", 1, f"Skipped: {reason}")


def test_ci_requires_the_reference_files_and_runs_readmes_test_command() -> None:
    repository = Path(__file__).resolve().parents[1]
    ci = (repository / ".ci" / "run").read_text().splitlines()
    readme = (repository / "README.md").read_text()

    assert "./scripts/test" in ci, "the README's test command, word for word"
    assert "```\n./scripts/test\n```" in readme
    exported = ci.index(f"export {reference_files.REQUIRE}=1")
    assert exported < ci.index("./scripts/test")
    assert f"{reference_files.REQUIRE}=1" in readme
