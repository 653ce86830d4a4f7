from typing import Any

import pytest

from nodes.translate import INVALID_COMMAND, UNSUPPORTED_POD_FEATURE
from tests.translate.pods import CONTAINER, create_body, make_pod, refusal_of

ENV = [{"name": "PORT", "value": "8080"}, {"name": "MODE", "value": "fast"}]


@pytest.mark.spec_checked
@pytest.mark.parametrize(
    ("container", "expected"),
    [
        pytest.param({}, None, id="image-default"),
        pytest.param({"command": ["/app"]}, ["/app"], id="command-only"),
        pytest.param(
            {"command": ["python", "-m", "app"], "args": ["--port", "8080"]},
            ["python", "-m", "app", "--port", "8080"],
            id="command-then-args",
        ),
        pytest.param(
            {"command": ["/app", "--port=$(PORT)"], "args": ["$(MODE)", "$(UNSET)"]},
            ["/app", "--port=8080", "fast", "$(UNSET)"],
            id="expanded-with-env",
        ),
        pytest.param({"command": ["echo", "$$(PORT)"]}, ["echo", "$(PORT)"], id="escaped"),
        pytest.param({"command": ["sh", "-c", "a; b && c"]}, ["sh", "-c", "a; b && c"], id="shell"),
        pytest.param({"command": ["x"] * 100}, ["x"] * 100, id="hundred-elements"),
    ],
)
def test_command_and_args_become_one_command(
    container: dict[str, Any], expected: list[str] | None
) -> None:
    body = create_body(make_pod(container={"env": ENV, **container}))

    assert body["container"].get("command") == expected


@pytest.mark.parametrize(
    ("container", "reason", "field"),
    [
        pytest.param(
            {"args": ["--port", "80"]},
            UNSUPPORTED_POD_FEATURE,
            f"{CONTAINER}.args",
            id="args-without-command",
        ),
        pytest.param(
            {"command": [], "args": ["serve"]},
            UNSUPPORTED_POD_FEATURE,
            f"{CONTAINER}.args",
            id="empty-command-with-args",
        ),
        pytest.param(
            {"command": ["/app", ""]},
            INVALID_COMMAND,
            f"{CONTAINER}.command[1]",
            id="empty-element",
        ),
        pytest.param(
            {"command": ["/app"], "args": ["a", ""]},
            INVALID_COMMAND,
            f"{CONTAINER}.args[1]",
            id="empty-arg",
        ),
        pytest.param(
            {"command": ["/app", "x" * 1001]},
            INVALID_COMMAND,
            f"{CONTAINER}.command[1]",
            id="too-long",
        ),
        pytest.param(
            {"command": ["sh", "-c"], "args": ["set -e\necho hi\n"]},
            INVALID_COMMAND,
            f"{CONTAINER}.args[0]",
            id="multi-line-script",
        ),
        pytest.param(
            {"command": ["x"] * 60, "args": ["y"] * 41},
            INVALID_COMMAND,
            f"{CONTAINER}.args",
            id="too-many",
        ),
    ],
)
def test_commands_saladcloud_cannot_hold_are_refused(
    container: dict[str, Any], reason: str, field: str
) -> None:
    refusal = refusal_of(make_pod(container=container))

    assert (refusal.reason, refusal.field, refusal.permanent) == (reason, field, True)
