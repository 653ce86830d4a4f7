"""A scratch directory holding a projects file and key files, as a user would lay them out."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

KEY_A = "salad-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
KEY_B = "salad-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


@dataclass
class ConfigDir:
    root: Path

    def write(self, text: str, name: str = "projects.yaml") -> Path:
        """Write a projects file; ``text`` is dedented, so line 1 is its first line."""
        path = self.root / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def key(self, name: str, content: str | bytes) -> Path:
        path = self.root / "keys" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        return path


@pytest.fixture
def config_dir(tmp_path: Path) -> ConfigDir:
    directory = ConfigDir(tmp_path)
    directory.key("a", KEY_A + "\n")
    return directory
