"""``salad-vk simulate``: its flags, its config file, and how it fails."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nodes.saladcloud.simulator import OptionsError, SimulatorOptions, load_options
from supervisor import cmd_simulate
from tests.openapi import REPO_ROOT

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+)/api/public)")


def salad_vk(*args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor", *args]


def simulate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salad-vk")
    commands = parser.add_subparsers(dest="command")
    cmd_simulate.register(commands)
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    simulate: argparse.ArgumentParser = action.choices["simulate"]
    return simulate


@pytest.fixture
def running() -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """``salad-vk simulate`` on a free port, until the test ends."""
    process = subprocess.Popen(
        salad_vk(
            "simulate", "--listen", "127.0.0.1:0", "--api-key", "cli-key", "--time-scale", "60"
        ),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = LISTENING.search(line)
        assert match, f"unexpected first line {line!r}"
        yield process, match[1], int(match[2])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_help_documents_every_option() -> None:
    shown = subprocess.run(
        salad_vk("simulate", "--help"), cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    flags = {
        (field.alias or name).replace("_", "-")
        for name, field in SimulatorOptions.model_fields.items()
    }

    for flag in sorted(flags | {"config"}):
        assert f"--{flag}" in shown, f"--{flag} is not in --help"
    for action in simulate_parser()._actions:
        assert action.help and len(action.help) > 15, f"{action.option_strings} has no real help"
    assert "/_simulator" in shown, "the run-time controls are documented"


def test_a_second_simulator_on_the_same_port_fails_with_one_clear_line(
    running: tuple[subprocess.Popen[str], str, int],
) -> None:
    first, url, port = running

    second = subprocess.run(
        salad_vk("simulate", "--listen", f"127.0.0.1:{port}"),
        check=False,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"salad-vk simulate: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert "Traceback" not in second.stdout + second.stderr
    assert first.poll() is None, "the first one keeps serving"
    answer = httpx.get(
        url + "/organizations/salad-vk/projects/demo/containers",
        headers={"Salad-Api-Key": "cli-key"},
    )
    assert answer.status_code == 200
    assert answer.json() == {"items": []}


def test_sigint_stops_the_simulator_cleanly(
    running: tuple[subprocess.Popen[str], str, int],
) -> None:
    process, url, _ = running
    control = url.removesuffix("/api/public") + "/_simulator"
    assert httpx.get(control).json()["time_scale"] == 60

    process.send_signal(signal.SIGINT)

    assert process.wait(timeout=10) == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_invalid_options_exit_2_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    args = simulate_parser().parse_args(["--rate-limit", "0", "--project", "Acme/Demo"])

    assert cmd_simulate.run(args) == 2

    error = capsys.readouterr().err
    assert error.startswith("salad-vk simulate: ")
    assert "rate-limit" in error and "project" in error


def test_a_config_file_says_the_same_as_flags_and_flags_win(tmp_path: Path) -> None:
    config = tmp_path / "simulator.yaml"
    config.write_text(
        "project: [acme/demo, acme/batch]\n"
        "api-key: only-key\n"
        "rate-limit: 20\n"
        "time-scale: 60\n"
        "fail-image: ['broken:*']\n"
        "exit-image: ['jobs/*=0@30']\n"
        "storm: ['10+5']\n"
        "retry-after: true\n"
    )

    options = load_options(config, {"rate-limit": 30, "seed": 9})

    assert options.projects == ["acme/demo", "acme/batch"]
    assert options.api_keys == ["only-key"]
    assert options.rate_limit == 30
    assert options.seed == 9
    assert options.time_scale == 60
    assert options.exit_rules[0].matches("jobs/report") and options.exit_rules[0].after == 30
    assert options.storm_windows[0].start == 10 and options.storm_windows[0].length == 5
    assert options.retry_after is True


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("rate-limits: 20\n", "rate-limits"),
        ("exit-image: ['no-code-here']\n", "exit-image"),
        ("listen: localhost\n", "listen"),
        ("- a list\n", "mapping"),
        ("project: [acme]\n", "project"),
    ],
)
def test_a_config_file_with_a_mistake_is_refused_by_name(
    tmp_path: Path, text: str, named: str
) -> None:
    config = tmp_path / "simulator.yaml"
    config.write_text(text)

    with pytest.raises(OptionsError, match=named):
        load_options(config)


def test_a_missing_config_file_is_reported() -> None:
    with pytest.raises(OptionsError, match="cannot read"):
        load_options(Path("/nonexistent/simulator.yaml"))
