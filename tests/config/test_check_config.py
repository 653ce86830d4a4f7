"""``salad-vk check-config FILE`` validates, prints the resolved config, never a key."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence

import pytest
import yaml

from supervisor import cmd_check_config

from .conftest import KEY_A, KEY_B, ConfigDir

VALID = """
defaults:
  labels: {team: ml}
nodes:
  - {name: salad-team-a, organization: acme, project: team-a, apiKeyFile: keys/a}
  - {name: salad-team-b, organization: acme, project: team-b, apiKeyEnv: SALAD_KEY_B,
     defaultCountryCodes: [no]}
  - {name: salad-team-c, organization: acme, project: team-c, apiKeyEnv: SALAD_KEY_C}
"""


def run(argv: Sequence[str]) -> int:
    """The subcommand through its own parser, as ``supervisor.cli`` assembles it."""
    parser = argparse.ArgumentParser(prog="salad-vk")
    commands = parser.add_subparsers(dest="command", required=True)
    cmd_check_config.register(commands)
    args = parser.parse_args(argv)
    return int(args.handler(args))


@pytest.fixture
def keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALAD_KEY_B", KEY_B)
    monkeypatch.setenv("SALAD_KEY_C", KEY_A)


@pytest.mark.usefixtures("keys_in_env")
def test_a_valid_file_prints_the_resolved_config_as_yaml_and_exits_0(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(VALID)

    status = run(["check-config", str(path)])

    out, err = capsys.readouterr()
    assert status == 0
    assert err == ""
    assert out.startswith(f"# {path}: valid, 3 nodes\n")
    printed = yaml.safe_load(out)
    assert printed["saladApiUrl"] == "https://api.salad.com/api/public"
    a, b, c = printed["nodes"]
    assert a["name"] == "salad-team-a"
    assert a["labels"] == {"team": "ml"}
    assert b["defaultCountryCodes"] == ["no"]
    assert a["apiKey"] == (
        f"*** (from file {config_dir.root / 'keys' / 'a'}; {len(KEY_A)} bytes;"
        " same key as salad-team-c)"
    )
    assert b["apiKey"] == f"*** (from env SALAD_KEY_B; {len(KEY_B)} bytes)"
    assert c["apiKey"].startswith("*** (from env SALAD_KEY_C;")


@pytest.mark.usefixtures("keys_in_env")
def test_no_key_is_ever_printed(config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_dir.write(VALID)

    run(["check-config", str(path)])
    config_dir.write(VALID + "    apiKey: " + KEY_B + "\n")
    run(["check-config", str(path)])

    out, err = capsys.readouterr()
    for key in (KEY_A, KEY_B):
        assert key not in out
        assert key not in err


def test_an_invalid_file_prints_the_problems_to_stderr_and_exits_1(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(VALID)  # SALAD_KEY_B and SALAD_KEY_C are not set

    status = run(["check-config", str(path)])

    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""
    assert err.splitlines() == [
        f"{path}:5: nodes[1].apiKeyEnv: environment variable SALAD_KEY_B is not set",
        f"{path}:7: nodes[2].apiKeyEnv: environment variable SALAD_KEY_C is not set",
        f"check-config: 2 problems in {path}",
    ]


def test_a_missing_file_exits_1(config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_dir.root / "absent.yaml"

    assert run(["check-config", str(path)]) == 1

    assert capsys.readouterr().err.splitlines()[0] == f"{path}: file does not exist"


@pytest.mark.skipif(
    importlib.util.find_spec("supervisor.cmd_simulate") is None,
    reason="supervisor.cli needs supervisor.cmd_simulate, written separately",
)
@pytest.mark.usefixtures("keys_in_env")
def test_the_salad_vk_cli_offers_check_config(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    from supervisor.cli import main  # noqa: PLC0415 - only importable once cmd_simulate exists

    path = config_dir.write(VALID)

    assert main(["check-config", str(path)]) == 0
    assert "salad-team-a" in capsys.readouterr().out


def test_tenancy_limits_are_shown_resolved(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(
        """
        defaults:
          allowedNamespaces: [ml-jobs]
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a,
             namespaceSelector: {matchExpressions: [{key: tenant, operator: Exists}]}}
          - {name: b, organization: acme, project: team-b, apiKeyFile: keys/a,
             allowedNamespaces: [research, ml-jobs]}
        """
    )

    assert run(["check-config", str(path)]) == 0

    a, b = yaml.safe_load(capsys.readouterr().out)["nodes"]
    assert a["allowedNamespaces"] == ["ml-jobs"]
    assert a["namespaceSelector"] == {"matchExpressions": [{"key": "tenant", "operator": "Exists"}]}
    assert b["allowedNamespaces"] == ["research", "ml-jobs"]
    assert b["namespaceSelector"] is None


def test_an_api_url_in_clear_text_is_refused_naming_the_key_and_the_file(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(
        """
        saladApiUrl: http://api.salad.com/api/public
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: b, organization: acme, project: team-b, apiKeyFile: keys/a,
             saladApiUrl: "http://127.0.0.1:8787/api/public"}
        """
    )

    assert run(["check-config", str(path)]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:1: saladApiUrl: 'http://api.salad.com/api/public' would send the API key in"
        " clear text: use https:// (http:// is accepted only for a loopback host,"
        " 127.0.0.0/8, ::1 or localhost, such as the simulator)",
        f"check-config: 1 problem in {path}",
    ]
