"""SaladCloud errors that are about where we called name the URL, and say what to check."""

from __future__ import annotations

import socket

import httpx
import pytest

from nodes.reconciler import health_from_error
from nodes.saladcloud.errors import SaladNotFound, SaladUnavailable
from nodes.saladcloud.ratelimit import KeyBudget
from nodes.saladcloud.retry import RetryPolicy
from nodes.saladcloud.simulator import running_simulator

from .builders import KEY, ORG, PROJECT, client, options

pytestmark = pytest.mark.anyio

ONE_TRY = RetryPolicy(max_attempts=1)


async def test_a_base_url_without_api_public_answers_404_and_the_node_says_so() -> None:
    async with running_simulator(options()) as sim, httpx.AsyncClient() as http:
        host_only = sim.url.removesuffix("/api/public")
        salad = client(http, host_only, KeyBudget(600), retry=ONE_TRY)

        with pytest.raises(SaladNotFound) as raised:
            await salad.list_container_groups()

    url = f"{host_only}/organizations/{ORG}/projects/{PROJECT}/containers"
    assert raised.value.url == url
    assert f"list_container_groups {url} - HTTP 404" in str(raised.value)
    health = health_from_error(raised.value, listing=True)
    assert health is not None
    assert (health.reachable, health.reason) == (False, "ProjectNotFound")
    assert health.message.startswith(
        f"SaladCloud answered 404 for the project's container groups (list_container_groups {url}"
    )
    assert health.message.endswith(
        "the API base URL may lack /api/public (saladApiUrl; the default is"
        " https://api.salad.com/api/public)"
    )
    assert KEY not in health.message


async def test_a_project_saladcloud_does_not_know_says_to_check_the_names() -> None:
    async with running_simulator(options()) as sim, httpx.AsyncClient() as http:
        salad = client(http, sim.url, KeyBudget(600), project="typo", retry=ONE_TRY)

        with pytest.raises(SaladNotFound) as raised:
            await salad.list_container_groups()

    health = health_from_error(raised.value, listing=True)
    assert health is not None
    assert health.message.startswith("SaladCloud has no such project (list_container_groups ")
    assert f"{sim.url}/organizations/{ORG}/projects/typo/containers" in health.message
    assert "check organization and project in the projects file" in health.message


async def test_a_connection_that_fails_names_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    base = f"http://127.0.0.1:{port}/api/public"
    async with httpx.AsyncClient() as http:
        salad = client(http, base, KeyBudget(600), retry=ONE_TRY)

        with pytest.raises(SaladUnavailable) as raised:
            await salad.list_container_groups()

    url = f"{base}/organizations/{ORG}/projects/{PROJECT}/containers"
    assert str(raised.value).startswith(f"list_container_groups {url} - ConnectError")
    health = health_from_error(raised.value, listing=True)
    assert health is not None
    assert health.reason == "APIUnreachable"
    assert url in health.message
