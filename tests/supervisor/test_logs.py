"""Log lines name their node and project, and never carry a secret."""

import io
import json
import logging

from supervisor.logs import Redactor, configure, node_context

KEY = "sk-live-0123456789abcdef"


def _capture(log_format: str) -> tuple[io.StringIO, Redactor]:
    stream = io.StringIO()
    redactor = configure("INFO", log_format, stream=stream)  # type: ignore[arg-type]
    return stream, redactor


def _fail_with(message: str) -> None:
    raise RuntimeError(message)


def test_lines_inside_a_node_context_carry_node_and_project() -> None:
    stream, _ = _capture("text")
    with node_context("salad-a", "team-a"):
        logging.getLogger("nodes.x").info("hello")
    logging.getLogger("nodes.x").info("outside")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("hello [node=salad-a project=team-a]")
    assert second.endswith("outside")


def test_explicit_extra_wins_over_the_context() -> None:
    stream, _ = _capture("json")
    with node_context("salad-a", "team-a"):
        logging.getLogger("x").warning("moved", extra={"node": "salad-b"})
    entry = json.loads(stream.getvalue())
    assert entry["node"] == "salad-b"
    assert entry["project"] == "team-a"
    assert entry["level"] == "warning"
    assert entry["message"] == "moved"


def test_a_registered_secret_is_masked_in_messages_and_tracebacks() -> None:
    stream, redactor = _capture("text")
    redactor.add(KEY)
    log = logging.getLogger("x")
    log.error("calling with %s", KEY)
    try:
        _fail_with(f"bad header {KEY}")
    except RuntimeError:
        log.exception("failed")
    text = stream.getvalue()
    assert KEY not in text
    assert "calling with ***" in text
    assert "bad header ***" in text


def test_json_lines_are_scrubbed_too() -> None:
    stream, redactor = _capture("json")
    redactor.add(KEY)
    logging.getLogger("x").info("key=%s", KEY, extra={"detail": KEY})
    assert KEY not in stream.getvalue()
    assert json.loads(stream.getvalue())["detail"] == "***"
