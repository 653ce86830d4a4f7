"""Waiting for the Kubernetes API server at start-up, said once rather than per node.

Without this, an API server that cannot be reached at start shows as every node
failing to register, each retrying and logging on its own: fifty nodes, a line per
node per retry. Here the process asks once (``/version``) until the server answers,
says so in one line at the first failure, sums up once a minute while it lasts, and
says when it answered; only then do nodes start. ``/healthz`` is served meanwhile,
so the pod is not restarted for a control plane that is away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from nodes.kube import KubeClient, KubeError

log = logging.getLogger(__name__)


def _unreachable(error: KubeError) -> bool:
    """Whether the answer means "no usable API server yet" (versus: it answered)."""
    return error.status in (0, 401, 429) or error.status >= 500


def _why(error: KubeError) -> str:
    if error.status == 401:
        return (
            "it refuses the credentials (HTTP 401): check the kubeconfig's user, or the"
            " service account token"
        )
    if error.status == 0:
        return f"{error.reason}: {error.message}"
    return f"HTTP {error.status} {error.reason}".rstrip()


async def wait_for_api_server(
    kube: KubeClient,
    server: str,
    *,
    first_delay: float = 1.0,
    max_delay: float = 10.0,
    summary_every: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Return once the API server at ``server`` answers; the number of attempts made."""
    attempts = 0
    delay = first_delay
    started = last_said = clock()
    while True:
        attempts += 1
        try:
            await kube.get("/version")
        except KubeError as error:
            if not _unreachable(error):
                break  # it answered (a 403 on /version is still an answer)
            now = clock()
            if attempts == 1:
                log.error(
                    "cannot reach the Kubernetes API server at %s: %s; retrying, nodes start"
                    " once it answers",
                    server,
                    _why(error),
                )
            elif now - last_said >= summary_every:
                last_said = now
                log.warning(
                    "still cannot reach the Kubernetes API server at %s after %d attempts in"
                    " %.0fs: %s",
                    server,
                    attempts,
                    now - started,
                    _why(error),
                )
            await anyio.sleep(delay)
            delay = min(max_delay, delay * 2)
        else:
            break
    if attempts > 1:
        log.info(
            "the Kubernetes API server at %s answers, after %d attempts in %.0fs",
            server,
            attempts,
            clock() - started,
        )
    return attempts
