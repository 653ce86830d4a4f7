"""Files some tests compare against that the repository does not hold.

SaladCloud's OpenAPI spec and KEDA's CRDs are other people's files, copied verbatim
beside the repository (``../shared/``) on the team's machines and in CI. A user's
clone has no such folder, so a test that needs one of them is *skipped* there, and the
terminal summary says once which file is missing and how to get it; a test that does
not need one never looks for it.

Each file is looked for in this order: its environment variable (the file, or the
folder holding it), then ``../shared/...`` beside the repository.

``SALAD_VK_REQUIRE_REFERENCE_FILES=1`` turns the skip into a failure. CI sets it
(``.ci/run``): a conformance check that silently skips checks nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import openapi

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REQUIRE = "SALAD_VK_REQUIRE_REFERENCE_FILES"


@dataclass(frozen=True)
class ReferenceFile:
    what: str
    variable: str
    default: Path
    """Where the team's checkouts and CI have it: a file, or a folder of files."""
    pattern: str
    """The file names it is made of, when the variable or default names a folder."""
    how_to_get: tuple[str, ...]

    def location(self, environ: Mapping[str, str]) -> tuple[Path, str]:
        """The path to look at, and how it was chosen (for the messages)."""
        configured = environ.get(self.variable)
        if configured:
            return Path(configured), f"${self.variable}={configured}"
        return self.default, f"{self.default} (${self.variable} is not set)"

    def files(self, environ: Mapping[str, str]) -> list[Path]:
        """The files found, in name order; empty when there are none."""
        path, _ = self.location(environ)
        if path.is_file():
            return [path]
        if path.is_dir():
            return sorted(p for p in path.glob(self.pattern) if p.is_file())
        return []

    def missing(self, environ: Mapping[str, str]) -> str:
        """The reason of every test skipped for the lack of this file: short, since
        pytest repeats it for each test; the summary's 'reference files' says the rest."""
        return f"needs {self.what}, not found (see 'reference files' below)"


SALADCLOUD_OPENAPI = ReferenceFile(
    what="the SaladCloud OpenAPI spec",
    variable="SALADCLOUD_OPENAPI",
    default=SHARED / "saladcloud" / "salad-cloud.yaml",
    pattern="salad-cloud.yaml",
    how_to_get=(
        "the project follows SaladCloud's public spec 0.9.0-alpha.17; download it with",
        "curl -fLO https://raw.githubusercontent.com/SaladTechnologies/salad-cloud-docs/"
        "e6dba327c7f83e609a231309c1e5cded5d194964/api-specs/salad-cloud.yaml",
        "then set SALADCLOUD_OPENAPI to the file (or to its folder)",
    ),
)
KEDA_CRDS = ReferenceFile(
    what="KEDA's CRDs",
    variable="KEDA_CRDS",
    default=SHARED / "keda",
    pattern="keda.sh_*.yaml",
    how_to_get=(
        "download keda.sh_scaledobjects.yaml and keda.sh_triggerauthentications.yaml from",
        "https://raw.githubusercontent.com/kedacore/keda/"
        "8b4f083ca8c8c2baf8477e322bd4d16ac4dfa09a/config/crd/bases/ into one folder",
        "then set KEDA_CRDS to that folder (or to one file holding both CRDs)",
    ),
)
REFERENCE_FILES = (SALADCLOUD_OPENAPI, KEDA_CRDS)

_MISSING = pytest.StashKey[dict[ReferenceFile, str]]()


def required(environ: Mapping[str, str]) -> bool:
    return environ.get(REQUIRE, "").strip() not in ("", "0")


def files_or_skip(reference: ReferenceFile, environ: Mapping[str, str]) -> list[Path]:
    """The files of ``reference``; else the test is skipped (failed, when required)."""
    found = reference.files(environ)
    if found:
        return found
    if required(environ):
        _, where = reference.location(environ)
        pytest.fail(
            f"{reference.what} is missing: looked at {where}; ${REQUIRE} is set, so that is "
            "a failure, not a skip",
            pytrace=False,
        )
    pytest.skip(reference.missing(environ))


def _session_files(config: pytest.Config, reference: ReferenceFile) -> list[Path]:
    if not reference.files(os.environ):
        config.stash.setdefault(_MISSING, {})[reference] = reference.missing(os.environ)
    return files_or_skip(reference, os.environ)


@pytest.fixture(scope="session")
def saladcloud_spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The SaladCloud OpenAPI spec, read with YAML 1.2 booleans (``no`` stays Norway)."""
    return openapi.load(_session_files(request.config, SALADCLOUD_OPENAPI)[0])


@pytest.fixture(scope="session")
def keda_crd_files(request: pytest.FixtureRequest) -> list[Path]:
    return _session_files(request.config, KEDA_CRDS)


def _skipped_for(reports: list[Any], reason: str) -> int:
    count = 0
    for report in reports:
        longrepr = getattr(report, "longrepr", None)
        if isinstance(longrepr, tuple) and reason in str(longrepr[2]):
            count += 1
    return count


def summary_lines(missing: Mapping[ReferenceFile, str], stats: Mapping[str, Any]) -> Iterator[str]:
    """What the terminal summary says once about each missing reference file."""
    for reference, reason in missing.items():
        skipped = _skipped_for(list(stats.get("skipped", [])), reason)
        _, where = reference.location(os.environ)
        outcome = (
            f"every test that needs it failed (${REQUIRE} is set)"
            if required(os.environ)
            else f"{skipped} test(s) skipped"
        )
        yield f"{reference.what}: not found at {where}; {outcome}"
        for line in reference.how_to_get:
            yield f"    {line}"
    if missing and not required(os.environ):
        yield f"CI sets {REQUIRE}=1, which turns these skips into failures."


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    missing = config.stash.get(_MISSING, {})
    if not missing:
        return
    terminalreporter.section("reference files")
    for line in summary_lines(missing, terminalreporter.stats):
        terminalreporter.write_line(line)
