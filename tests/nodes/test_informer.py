"""An informer's owner never dies of what the API server or the client did."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from nodes.informer import Informer
from nodes.kube import KubeError

pytestmark = pytest.mark.anyio


class Surprising:
    """A list that fails once with a KubeError, once with something nobody foresaw,
    then answers; the watch then ends at once (the server's timeout)."""

    def __init__(self) -> None:
        self.failures: list[Exception] = [
            KubeError(503, "ServiceUnavailable", "later", "GET", "/x"),
            ValueError("an answer nobody foresaw"),
        ]

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        if self.failures:
            raise self.failures.pop(0)
        return {"metadata": {"resourceVersion": "5"}, "items": [{"metadata": {"name": "a"}}]}

    async def watch(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a watch that breaks in a new way")
        yield  # pragma: no cover - makes this an async generator


async def test_a_failing_list_or_watch_is_retried_and_the_cache_fills() -> None:
    changed: list[str] = []
    informer = Informer(
        Surprising(),  # type: ignore[arg-type]
        "/x",
        {},
        on_change=changed.append,
        max_backoff=0.01,
    )
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            await tasks.start(informer.run)
            assert informer.synced and set(informer.items) == {"a"} and changed == ["a"]
            while informer.lists < 2:  # the broken watch led to a relist, not a crash
                await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
