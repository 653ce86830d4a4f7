"""Fingerprints and diffs tell the supervisor which nodes a reload touches."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from config import NodeConfig, ProjectsConfig, diff_nodes, load_projects

from .conftest import KEY_B, ConfigDir

THREE_NODES = """
nodes:
  - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
  - {name: b, organization: acme, project: team-b, apiKeyFile: keys/a}
  - {name: c, organization: acme, project: team-c, apiKeyEnv: KEY_C}
"""


def _load(path: Path) -> ProjectsConfig:
    return load_projects(path, {"KEY_C": KEY_B})


def test_fingerprints_are_stable_across_identical_reloads(config_dir: ConfigDir) -> None:
    path = config_dir.write(THREE_NODES)

    first, second = _load(path), _load(path)

    assert [n.fingerprint for n in first.nodes] == [n.fingerprint for n in second.nodes]
    assert len({n.fingerprint for n in first.nodes}) == 3
    diff = first.diff(second)
    assert list(diff.unchanged) == ["a", "b", "c"]
    assert not diff.has_changes


def test_a_new_key_in_the_key_file_changes_the_fingerprint(config_dir: ConfigDir) -> None:
    path = config_dir.write(THREE_NODES)
    before = _load(path)

    config_dir.key("a", "a-rotated-key-0123456789\n")
    after = _load(path)

    diff = before.diff(after)
    assert sorted(diff.changed) == ["a", "b"]
    assert diff.changed["a"].changed_keys == ("apiKey",)
    assert list(diff.unchanged) == ["c"]


def test_the_fingerprint_never_contains_the_key(config_dir: ConfigDir) -> None:
    node = NodeConfig(name="a", organization="acme", project="p", api_key=SecretStr(KEY_B))

    assert KEY_B not in node.fingerprint
    assert KEY_B not in node.api_key_digest


def test_moving_the_key_file_without_changing_the_key_changes_nothing(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(THREE_NODES)
    before = _load(path)

    (config_dir.root / "keys" / "a").rename(config_dir.root / "keys" / "moved")
    config_dir.write(THREE_NODES.replace("keys/a", "keys/moved"))
    after = _load(path)

    assert not before.diff(after).has_changes


def test_diff_sorts_nodes_into_added_removed_changed_and_unchanged(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(THREE_NODES)
    before = _load(path)

    config_dir.write(
        """
        nodes:
          - {name: a, organization: acme, project: team-a, apiKeyFile: keys/a}
          - {name: c, organization: acme, project: team-c, apiKeyEnv: KEY_C, pollInterval: 5,
             labels: {team: c}}
          - {name: d, organization: acme, project: team-d, apiKeyFile: keys/a}
        """
    )
    after = _load(path)
    diff = before.diff(after)

    assert list(diff.added) == ["d"]
    assert diff.added["d"] is after.nodes_by_name["d"]
    assert list(diff.removed) == ["b"]
    assert diff.removed["b"] is before.nodes_by_name["b"]
    assert list(diff.changed) == ["c"]
    assert diff.changed["c"].old is before.nodes_by_name["c"]
    assert diff.changed["c"].new is after.nodes_by_name["c"]
    assert diff.changed["c"].changed_keys == ("pollInterval", "labels")
    assert list(diff.unchanged) == ["a"]
    assert diff.has_changes


def test_a_change_of_defaults_or_top_level_settings_changes_every_node_it_reaches(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(THREE_NODES)
    before = _load(path)

    config_dir.write(
        "apiRateLimit: 120\ndefaults: {capacity: {pods: 50}}\n" + THREE_NODES.lstrip("\n")
    )
    diff = before.diff(_load(path))

    assert list(diff.changed) == ["a", "b", "c"]
    assert diff.changed["a"].changed_keys == ("apiRateLimit", "capacity")


def test_a_node_moved_to_another_project_is_changed_not_added() -> None:
    old = NodeConfig(name="a", organization="acme", project="p1", api_key=SecretStr("k"))
    new = old.model_copy(update={"project": "p2"})

    diff = diff_nodes([old], [new])

    assert list(diff.changed) == ["a"]
    assert diff.changed["a"].changed_keys == ("project",)


def test_a_change_of_tenancy_limits_restarts_the_node_and_says_which(
    config_dir: ConfigDir,
) -> None:
    path = config_dir.write(THREE_NODES)
    before = _load(path)

    config_dir.write(
        THREE_NODES.replace(
            "project: team-a, apiKeyFile: keys/a}",
            "project: team-a, apiKeyFile: keys/a, allowedNamespaces: [ml]}",
        ).replace(
            "project: team-b, apiKeyFile: keys/a}",
            "project: team-b, apiKeyFile: keys/a, namespaceSelector: {matchLabels: {tenant: b}}}",
        )
    )
    diff = before.diff(_load(path))

    assert list(diff.changed) == ["a", "b"]
    assert diff.changed["a"].changed_keys == ("allowedNamespaces",)
    assert diff.changed["b"].changed_keys == ("namespaceSelector",)
    assert list(diff.unchanged) == ["c"]
