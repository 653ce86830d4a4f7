"""Mounted ConfigMaps and Secrets change by swapping a ``..data`` symlink; reloads see it."""

from __future__ import annotations

import os
from pathlib import Path

from config import content_hash, load_projects

from .conftest import KEY_A, KEY_B

PROJECTS = """\
nodes:
  - {{name: a, organization: acme, project: {project}, apiKeyFile: {keys}/a}}
"""


class AtomicWriterDir:
    """The kubelet's layout: ``file -> ..data/file``, ``..data -> ..<timestamp>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self._generation = 0

    def publish(self, files: dict[str, str]) -> None:
        self._generation += 1
        version = self.root / f"..2026_01_01_00_00_{self._generation:02d}.000000001"
        version.mkdir()
        for name, content in files.items():
            (version / name).write_text(content)
        # Swapped in one rename, as the kubelet does: readers never see a half state.
        staging = self.root / "..data_tmp"
        staging.symlink_to(version.name)
        staging.replace(self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(Path("..data") / name)


def test_the_loader_reads_through_a_swapped_configmap(tmp_path: Path) -> None:
    keys = AtomicWriterDir(tmp_path / "keys")
    keys.publish({"a": KEY_A})
    configmap = AtomicWriterDir(tmp_path / "config")
    configmap.publish({"projects.yaml": PROJECTS.format(project="team-a", keys=keys.root)})
    path = configmap.root / "projects.yaml"

    before = load_projects(path, {})
    hash_before = content_hash(path)
    configmap.publish({"projects.yaml": PROJECTS.format(project="team-b", keys=keys.root)})
    after = load_projects(path, {})

    assert before.nodes[0].project == "team-a"
    assert after.nodes[0].project == "team-b"
    assert content_hash(path) != hash_before
    assert before.source_hashes[path] == hash_before
    assert after.source_hashes[path] == content_hash(path)


def test_a_rotated_secret_changes_the_key_files_hash_and_the_node(tmp_path: Path) -> None:
    keys = AtomicWriterDir(tmp_path / "keys")
    keys.publish({"a": KEY_A + "\n"})
    config = tmp_path / "projects.yaml"
    config.write_text(PROJECTS.format(project="team-a", keys=keys.root))
    key_path = keys.root / "a"

    before = load_projects(config, {})
    assert before.watched_paths() == (config, key_path)
    assert all(content_hash(p) == h for p, h in before.source_hashes.items())

    keys.publish({"a": KEY_B + "\n"})

    assert content_hash(key_path) != before.source_hashes[key_path]
    assert content_hash(config) == before.source_hashes[config]
    after = load_projects(config, {})
    assert after.nodes[0].api_key.get_secret_value() == KEY_B
    assert before.diff(after).changed["a"].changed_keys == ("apiKey",)


def test_content_hash_depends_on_bytes_only(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(b"nodes: []\n")
    two.write_bytes(b"nodes: []\n")
    first = content_hash(one)

    os.utime(one, (0, 0))
    assert content_hash(one) == first == content_hash(two)
    one.write_bytes(b"nodes: [] \n")
    assert content_hash(one) != first


def test_content_hash_of_a_vanished_file_differs_and_does_not_raise(tmp_path: Path) -> None:
    path = tmp_path / "projects.yaml"
    path.write_text("nodes: []\n")
    present = content_hash(path)

    path.unlink()

    assert content_hash(path) != present
    assert content_hash(path) == content_hash(tmp_path / "never-existed")


def test_each_key_file_is_watched_once_however_many_nodes_use_it(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(KEY_A)
    config = tmp_path / "projects.yaml"
    config.write_text(
        "nodes:\n"
        "  - {name: a, organization: acme, project: team-a, apiKeyFile: k}\n"
        "  - {name: b, organization: acme, project: team-b, apiKeyFile: k}\n"
        "  - {name: c, organization: acme, project: team-c, apiKeyEnv: KEY}\n"
    )

    loaded = load_projects(config, {"KEY": KEY_B})

    assert loaded.watched_paths() == (config, tmp_path / "k")
