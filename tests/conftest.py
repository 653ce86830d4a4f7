"""Fixtures every test may use; the control-plane ones live in tests/controlplane/fixtures.py,
the reference files (SaladCloud's spec, KEDA's CRDs) in tests/reference_files.py."""

import pytest

pytest_plugins = ["tests.controlplane.fixtures", "tests.reference_files"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"
