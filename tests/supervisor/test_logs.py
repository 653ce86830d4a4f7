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


def test_a_key_after_a_newline_or_tab_is_masked_in_json_lines_too() -> None:
    stream, redactor = _capture("json")
    redactor.add(KEY)
    log = logging.getLogger("x")
    log.info("header:\n%s", KEY)
    log.info("field\t%s", KEY, extra={"detail": f"line\n{KEY}"})
    try:
        _fail_with(f"bad header\n{KEY}")
    except RuntimeError:
        log.exception("failed")
    assert KEY not in stream.getvalue()
    assert "\\n***" in stream.getvalue()


def test_only_whole_tokens_are_masked_so_a_key_inside_a_node_name_leaves_the_name_alone() -> None:
    stream, redactor = _capture("text")
    redactor.add("wrongkey")
    log = logging.getLogger("x")
    log.warning("node salad-wrongkey refused its key wrongkey")
    log.warning('header {"Salad-Api-Key": "wrongkey"} url ?key=wrongkey&x=1 wrongkey_2')
    first, second = stream.getvalue().splitlines()
    assert first.endswith("node salad-wrongkey refused its key ***")
    assert second.endswith('header {"Salad-Api-Key": "***"} url ?key=***&x=1 wrongkey_2')


def test_a_longer_secret_that_contains_a_shorter_one_is_masked_whole() -> None:
    stream, redactor = _capture("text")
    redactor.add("abcdefgh")
    redactor.add("abcdefgh.ijklmnop")
    logging.getLogger("x").warning("got abcdefgh.ijklmnop and abcdefgh")
    assert stream.getvalue().rstrip().endswith("got *** and ***")


def test_a_key_shorter_than_8_is_not_masked_and_said_once_without_the_key() -> None:
    stream, redactor = _capture("text")
    redactor.add("shortk", owner="salad-a")
    redactor.add("shortk", owner="salad-a")
    logging.getLogger("x").info("node salad-shortk up")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "the API key of salad-a is 6 characters long, shorter than 8" in lines[0]
    assert "shortk" not in lines[0].replace("salad-shortk", "")
    assert lines[1].endswith("node salad-shortk up")


def test_with_a_thousand_keys_registered_each_is_masked_and_nothing_else() -> None:
    stream, redactor = _capture("json")
    keys = [f"salad_cloud_user_{i:04d}_{'k' * 24}" for i in range(1000)]
    for key in keys:
        redactor.add(key)
    log = logging.getLogger("x")
    log.info("first %s, last %s", keys[0], keys[-1], extra={"detail": keys[500]})
    log.info("a near miss %s_ and %s", keys[1], "salad_cloud_user_1000_" + "k" * 24)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "first ***, last ***"
    assert first["detail"] == "***"
    assert second["message"] == f"a near miss {keys[1]}_ and salad_cloud_user_1000_{'k' * 24}"
