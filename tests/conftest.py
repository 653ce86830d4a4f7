"""Fixtures every test may use; the control-plane ones live in tests/controlplane/fixtures.py."""

import pytest

pytest_plugins = ["tests.controlplane.fixtures"]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"
