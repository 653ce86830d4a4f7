"""``salad-vk completion`` and ``--version``: scripts written from the parser itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import supervisor
from supervisor.cli import build_parser, main
from supervisor.cmd_completion import describe, script

REPO = Path(__file__).resolve().parents[2]
SHELLCHECK = REPO / ".venv" / "bin" / "shellcheck"


def complete_in_bash(words: list[str], cwd: Path) -> list[str]:
    """What bash offers after ``words`` (the last one being completed), with the script
    sourced into a fresh non-interactive bash."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"source <({REPO}/.venv/bin/salad-vk completion bash)\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        "_salad_vk\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, cwd=cwd, check=False, timeout=30
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [word for word in result.stdout.splitlines() if word]


def test_bash_completion_sources_cleanly_and_offers_every_subcommand(tmp_path: Path) -> None:
    offered = complete_in_bash(["salad-vk", ""], tmp_path)
    for command in ("run", "check-config", "drain", "simulate", "demo", "completion"):
        assert command in offered
    assert "--version" in offered


def test_bash_completes_flags_choices_and_files(tmp_path: Path) -> None:
    (tmp_path / "projects.yaml").write_text("nodes: []\n")
    assert "--decommission-policy" in complete_in_bash(["salad-vk", "run", "--dec"], tmp_path)
    assert complete_in_bash(["salad-vk", "run", "--log-level", ""], tmp_path) == [
        "debug",
        "info",
        "warning",
        "error",
        "critical",
    ]
    assert complete_in_bash(["salad-vk", "check-config", "-o", "j"], tmp_path) == ["json"]
    assert complete_in_bash(["salad-vk", "drain", "--config", "proj"], tmp_path) == [
        "projects.yaml"
    ]
    assert complete_in_bash(["salad-vk", "check-config", "pro"], tmp_path) == ["projects.yaml"]
    assert "--all" in complete_in_bash(["salad-vk", "drain", "--a"], tmp_path)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_every_script_lists_every_subcommand_and_flag_of_the_parser(shell: str) -> None:
    text = script(shell, build_parser())
    _, commands = describe(build_parser())
    assert {c.name for c in commands} >= {"run", "check-config", "drain", "completion"}
    for command in commands:
        assert command.name in text
        for option in command.options:
            long_flag = next(f for f in option.flags if f.startswith("--"))
            spelled = long_flag.removeprefix("--") if shell == "fish" else long_flag
            assert spelled in text, (shell, command.name, long_flag)


def test_the_bash_script_passes_shellcheck(tmp_path: Path) -> None:
    if not SHELLCHECK.exists():
        pytest.skip("shellcheck comes with the dev tools")
    path = tmp_path / "salad-vk.bash"
    path.write_text(script("bash", build_parser()))
    result = subprocess.run(
        [str(SHELLCHECK), "--shell=bash", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("shell", "check"), [("zsh", ["zsh", "-n"]), ("fish", ["fish", "-n"])])
def test_zsh_and_fish_scripts_parse_where_those_shells_are_installed(
    shell: str, check: list[str], tmp_path: Path
) -> None:
    if shutil.which(check[0]) is None:
        pytest.skip(f"{check[0]} is not installed here")
    path = tmp_path / f"salad-vk.{shell}"
    path.write_text(script(shell, build_parser()))
    result = subprocess.run([*check, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_version_flag_and_subcommand_print_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    flag = capsys.readouterr().out
    assert main(["version"]) == 0
    assert capsys.readouterr().out == flag
    assert flag.startswith(f"salad-vk {supervisor.__version__} (Python ")


def test_completion_refuses_an_unknown_shell(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["completion", "powershell"])
    assert exited.value.code == 2
    assert "invalid choice: 'powershell'" in capsys.readouterr().err
