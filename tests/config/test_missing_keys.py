"""A key that is not there yet: an error for check-config, a keyless node for the process.

The process loads with ``allow_missing_keys``: one missing Secret must not stop every
node, nor make a reload reject the whole file. Anything else wrong with a key (a
directory, two lines, non-ASCII) stays an error either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, content_hash, load_projects
from config.loading import missing_key_message
from config.node import ApiKeySource

from .conftest import KEY_A, ConfigDir

TWO_NODES = """
nodes:
  - {name: salad-a, organization: acme, project: team-a, apiKeyFile: keys/a}
  - {name: salad-b, organization: acme, project: team-b, apiKeyFile: keys/b}
"""


def test_by_default_a_missing_key_file_is_an_error(config_dir: ConfigDir) -> None:
    path = config_dir.write(TWO_NODES)

    with pytest.raises(ConfigError) as raised:
        load_projects(path, {})

    (problem,) = raised.value.problems
    assert (problem.severity, problem.key_path) == ("error", "nodes[1].apiKeyFile")
    assert problem.message == f"file {config_dir.root / 'keys' / 'b'} does not exist"


def test_allowed_a_missing_key_file_loads_the_node_without_a_key_and_warns(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(TWO_NODES)

    config = load_projects(path, {}, allow_missing_keys=True)

    a, b = config.nodes
    assert a.api_key_missing is None
    assert a.api_key.get_secret_value() == KEY_A
    assert b.api_key.get_secret_value() == ""
    assert b.api_key_missing is not None
    assert b.api_key_missing.startswith(
        f"no API key: file {config_dir.root / 'keys' / 'b'} does not exist; write the key"
    )
    (warning,) = config.warnings
    assert (warning.severity, warning.line, warning.key_path) == (
        "warning",
        3,
        "nodes[1].apiKeyFile",
    )
    assert str(warning).startswith(f"{path}:3: warning: nodes[1].apiKeyFile: file ")
    assert "reason APIKeyMissing" in warning.message


def test_an_empty_key_file_counts_as_missing(config_dir: ConfigDir) -> None:
    config_dir.key("b", "\n")
    path = config_dir.write(TWO_NODES)

    (_, b) = load_projects(path, {}, allow_missing_keys=True).nodes

    assert b.api_key_missing is not None
    assert "is empty" in b.api_key_missing


def test_an_unset_key_variable_counts_as_missing_and_says_to_restart(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(TWO_NODES.replace("apiKeyFile: keys/b", "apiKeyEnv: SALAD_KEY_B"))

    (_, b) = load_projects(path, {}, allow_missing_keys=True).nodes

    assert b.api_key_missing is not None
    assert "environment variable SALAD_KEY_B is not set" in b.api_key_missing
    assert "restart salad-vk" in b.api_key_missing


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"first\nsecond\n", "one line"), (b"\xff\xfe", "non-ASCII")],
)
def test_a_key_file_that_is_there_but_wrong_is_an_error_even_when_missing_keys_are_allowed(
    config_dir: ConfigDir, content: bytes, says: str
) -> None:
    config_dir.key("b", content)
    path = config_dir.write(TWO_NODES)

    with pytest.raises(ConfigError, match=says):
        load_projects(path, {}, allow_missing_keys=True)


def test_the_missing_key_file_is_watched_so_its_appearance_is_a_change(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(TWO_NODES)
    key_b = config_dir.root / "keys" / "b"
    before = load_projects(path, {}, allow_missing_keys=True)
    assert key_b in before.watched_paths()
    assert before.source_hashes[key_b] == content_hash(key_b), "missing now, and unchanged"

    config_dir.key("b", "salad-key-bbbbbbbbbbbbbbbbbbbbbbbb\n")
    assert content_hash(key_b) != before.source_hashes[key_b]
    after = load_projects(path, {}, allow_missing_keys=True)

    diff = before.diff(after)
    assert list(diff.changed) == ["salad-b"]
    assert diff.changed["salad-b"].changed_keys == ("apiKey",)
    assert after.nodes[1].api_key_missing is None


def test_nodes_without_a_key_share_no_rate_budget(config_dir: ConfigDir) -> None:
    path = config_dir.write(TWO_NODES.replace("keys/a", "keys/c"))

    config = load_projects(path, {}, allow_missing_keys=True)

    assert all(node.api_key_missing for node in config.nodes)
    assert config.key_groups() == {}


def test_the_message_names_the_secret_when_the_key_lies_where_the_chart_mounts_secrets() -> None:
    source = ApiKeySource(kind="file", location="/etc/salad-vk/keys/salad-keys/team-c", size=0)

    problem = "file /etc/salad-vk/keys/salad-keys/team-c does not exist"

    message = missing_key_message(problem, source)

    assert "create key 'team-c' in Secret 'salad-keys'" in message
    assert "without a restart" in message
    assert "no SaladCloud call is made" in message


def test_a_key_shorter_than_8_characters_loads_with_a_warning_that_it_is_not_masked(
    config_dir: ConfigDir, tmp_path: Path
) -> None:
    config_dir.key("b", "wrongkey"[:7] + "\n")
    path = config_dir.write(TWO_NODES)

    config = load_projects(path, {})

    (warning,) = config.warnings
    assert warning.severity == "warning"
    assert warning.key_path == "nodes[1].apiKeyFile"
    assert "7 characters long: logs mask only keys of at least 8" in warning.message
    assert "wrongke" not in warning.message


def test_a_key_of_8_characters_loads_without_warning(config_dir: ConfigDir) -> None:
    config_dir.key("b", "wrongkey\n")
    path = config_dir.write(TWO_NODES)

    assert load_projects(path, {}).warnings == ()
