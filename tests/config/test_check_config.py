"""``salad-vk check-config FILE`` validates, prints the resolved config, never a key."""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Sequence

import pytest
import yaml

from config import load_projects
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
    a, b, _ = printed["nodes"]
    assert a["name"] == "salad-team-a"
    assert a["labels"] == {"team": "ml"}
    assert b["defaultCountryCodes"] == ["no"]
    assert a["apiKeyFile"] == str(config_dir.root / "keys" / "a")
    assert b["apiKeyEnv"] == "SALAD_KEY_B"
    # What is not a setting is a comment: the key's source, length and sharing.
    assert (
        f"# salad-team-a: fingerprint {_fingerprint(path, 0)}; key from file"
        f" {config_dir.root / 'keys' / 'a'} ({len(KEY_A)} characters), same key as"
        " salad-team-c\n" in out
    )
    assert f"key from env SALAD_KEY_B ({len(KEY_B)} characters)\n" in out


def _fingerprint(path: object, index: int) -> str:
    config = load_projects(path, {"SALAD_KEY_B": KEY_B, "SALAD_KEY_C": KEY_A})  # type: ignore[arg-type]
    return config.nodes[index].fingerprint[:16]


@pytest.mark.usefixtures("keys_in_env")
def test_the_resolved_yaml_is_a_projects_file_that_resolves_to_the_same_nodes(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(
        """
        defaults:
          labels: {team: ml}
          providerTaint: false
          capacity: {pods: 20}
        nodes:
          - {name: salad-team-a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: salad-team-b, organization: acme, project: team-b, apiKeyEnv: SALAD_KEY_B,
             providerTaint: true, taints: [{key: x.io/y, effect: NoExecute}],
             defaultPriority: batch}
          - {name: salad-team-c, organization: acme, project: team-c, apiKeyEnv: SALAD_KEY_C,
             taints: [{key: virtual-kubelet.io/provider, value: other, effect: NoSchedule}]}
        """
    )
    original = load_projects(path, {"SALAD_KEY_B": KEY_B, "SALAD_KEY_C": KEY_A})

    assert run(["check-config", str(path)]) == 0
    resolved = config_dir.write(capsys.readouterr().out, name="resolved.yaml")

    again = load_projects(resolved, {"SALAD_KEY_B": KEY_B, "SALAD_KEY_C": KEY_A})
    assert [n.fingerprint for n in again.nodes] == [n.fingerprint for n in original.nodes]
    assert [n.taints for n in again.nodes] == [n.taints for n in original.nodes]


@pytest.mark.usefixtures("keys_in_env")
def test_the_resolved_output_never_shows_a_key_the_input_format_refuses_and_explains_fingerprints(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(VALID)

    run(["check-config", str(path)])
    yaml_out = capsys.readouterr().out
    run(["check-config", "-o", "json", str(path)])
    json_out = json.loads(capsys.readouterr().out)

    for node in [*yaml.safe_load(yaml_out)["nodes"], *json_out["config"]["nodes"]]:
        assert not {"apiKey", "fingerprint", "apiRateLimit"} & set(node)
    comments = " ".join(
        line.removeprefix("#").strip() for line in yaml_out.splitlines() if line.startswith("#")
    )
    assert "fingerprint: a hash of everything a node runs with" in comments
    assert "restarts a node only when its fingerprint changes" in comments
    assert json_out["descriptions"]["nodes[].fingerprint"].startswith("a hash of everything")
    assert [n["fingerprint"] for n in json_out["nodes"]] == [
        _fingerprint(path, i) for i in range(3)
    ]


@pytest.mark.usefixtures("keys_in_env")
def test_json_output_of_a_valid_file_is_the_config_and_facts_about_each_node(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(VALID)

    status = run(["check-config", str(path), "-o", "json"])

    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert (document["file"], document["valid"], document["problems"]) == (str(path), True, [])
    assert [n["name"] for n in document["config"]["nodes"]] == [
        "salad-team-a",
        "salad-team-b",
        "salad-team-c",
    ]
    a_key = document["nodes"][0]["key"]
    assert a_key == {
        "source": "file",
        "location": str(config_dir.root / "keys" / "a"),
        "length": len(KEY_A),
        "missing": None,
        "sameKeyAs": ["salad-team-c"],
    }


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


def test_json_output_lists_every_problem_with_file_line_path_and_message(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/missing}
          - {name: b, organization: acme, project: team-b, apiKeyFile: keys/a,
             pollInterval: 0}
        """
    )

    status = run(["check-config", "--output", "json", str(path)])

    out, err = capsys.readouterr()
    assert (status, err) == (1, "")
    assert json.loads(out) == {
        "file": str(path),
        "valid": False,
        "problems": [
            {
                "severity": "error",
                "file": str(path),
                "line": 2,
                "path": "nodes[0].apiKeyFile",
                "message": f"file {config_dir.root / 'keys' / 'missing'} does not exist",
            },
            {
                "severity": "error",
                "file": str(path),
                "line": 4,
                "path": "nodes[1].pollInterval",
                "message": "must be greater than or equal to 1",
            },
        ],
    }


def test_allow_missing_keys_turns_a_missing_key_into_a_warning_and_exit_0(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/missing}
        """
    )

    status = run(["check-config", "--allow-missing-keys", str(path)])

    out, err = capsys.readouterr()
    assert status == 0
    assert err.startswith(f"{path}:2: warning: nodes[0].apiKeyFile: file ")
    assert "# a: fingerprint " in out
    assert "key MISSING" in out
    assert run(["check-config", str(path)]) == 1


def test_a_short_key_is_a_warning_on_stderr_and_still_valid(
    config_dir: ConfigDir, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir.key("short", "abc\n")
    path = config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/short}
        """
    )

    status = run(["check-config", str(path)])

    out, err = capsys.readouterr()
    assert status == 0
    assert "warning: nodes[0].apiKeyFile: the key in key file" in err
    assert "3 characters long" in err
    assert "abc" not in out.replace("acme", "")


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
    assert "namespaceSelector" not in b, "an unset key is left out of the resolved file"


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
