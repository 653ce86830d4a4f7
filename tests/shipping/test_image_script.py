"""scripts/image builds with whichever Docker-compatible builder there is; every shell
script of the project passes shellcheck."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

import supervisor

from .chart import REPO

SCRIPT = REPO / "scripts" / "image"
SHELLCHECK = REPO / ".venv" / "bin" / "shellcheck"


def image(
    *args: str, path: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environ,
    )


def fake_builder(folder: Path, name: str) -> Path:
    """An executable named like a builder that records its arguments."""
    folder.mkdir(exist_ok=True)
    tool = folder / name
    tool.write_text(f'#!/bin/sh\necho "{name} called: $*" >> "{folder}/calls"\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


SYSTEM_PATH = "/usr/bin:/bin"


@pytest.mark.parametrize("script", sorted((REPO / "scripts").iterdir()), ids=lambda p: p.name)
def test_every_script_passes_shellcheck(script: Path) -> None:
    # Without the dev tools, at least the syntax.
    check = [str(SHELLCHECK)] if SHELLCHECK.exists() else ["bash", "-n"]
    check.append(str(script))
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_first_builder_found_builds_the_version_tag(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_builder(bin_dir, "podman")
    fake_builder(bin_dir, "buildah")

    result = image(path=f"{bin_dir}:{SYSTEM_PATH}")

    assert result.returncode == 0, result.stderr
    calls = (bin_dir / "calls").read_text().splitlines()
    assert calls == [
        f"podman called: build --tag salad-vk:{supervisor.__version__} --file Dockerfile ."
    ]
    assert result.stdout.rstrip().endswith(
        f"image: salad-vk:{supervisor.__version__} (built with podman)"
    )


def test_the_builder_can_be_chosen_by_flag_or_environment_and_pushes_when_asked(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    for name in ("podman", "buildah", "nerdctl"):
        fake_builder(bin_dir, name)
    path = f"{bin_dir}:{SYSTEM_PATH}"

    by_env = image("-t", "r.example/salad-vk:1", path=path, env={"SALAD_VK_BUILDER": "nerdctl"})
    by_flag = image("--builder", "buildah", "-t", "r.example/salad-vk:1", "--push", path=path)

    assert by_env.returncode == 0 and by_flag.returncode == 0
    assert (bin_dir / "calls").read_text().splitlines() == [
        "nerdctl called: build --tag r.example/salad-vk:1 --file Dockerfile .",
        "buildah called: build --layers --tag r.example/salad-vk:1 --file Dockerfile .",
        "buildah called: push r.example/salad-vk:1",
    ]


def test_docker_builds_with_buildkit_for_the_dockerfiles_run_mount(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\necho "buildkit=$DOCKER_BUILDKIT $*" >> "{bin_dir}/calls"\n')
    docker.chmod(0o755)

    result = image("--", "--build-arg", "PYTHON_VERSION=3.12", path=f"{bin_dir}:{SYSTEM_PATH}")

    assert result.returncode == 0, result.stderr
    assert (bin_dir / "calls").read_text().strip() == (
        f"buildkit=1 build --tag salad-vk:{supervisor.__version__} --file Dockerfile"
        " --build-arg PYTHON_VERSION=3.12 ."
    )


def test_without_any_builder_it_says_which_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not any(shutil.which(b, path=SYSTEM_PATH) for b in ("docker", "podman", "nerdctl"))
    result = image(path=f"{empty}:{SYSTEM_PATH}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "scripts/image: no image builder found: install one of docker podman nerdctl buildah,"
        " or name one with --builder or SALAD_VK_BUILDER"
    )


def test_an_unknown_builder_is_refused(tmp_path: Path) -> None:
    result = image("--builder", "kaniko", path=SYSTEM_PATH)
    assert result.returncode == 2
    assert "unknown builder 'kaniko': use one of docker podman nerdctl buildah" in result.stderr


def test_the_readme_keeps_the_build_instructions_and_names_the_script() -> None:
    readme = (REPO / "README.md").read_text()
    assert "docker build -t registry.example.com/salad-vk:0.1.0 ." in readme
    assert "scripts/image" in readme
