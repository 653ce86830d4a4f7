"""The container image, checked without a Docker engine by scripts/check-image."""

from __future__ import annotations

import subprocess

import supervisor

from .chart import REPO


def test_the_dockerfile_lints_clean_and_its_wheel_installs_and_runs_in_a_fresh_venv() -> None:
    check = subprocess.run(
        [str(REPO / "scripts" / "check-image")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "usage: salad-vk" in check.stdout
    assert f"salad-vk {supervisor.__version__} (Python 3.11" in check.stdout
    assert check.stdout.rstrip().endswith("check-image passed")


def test_the_image_runs_salad_vk_run_as_uid_65532_from_the_wheel_alone() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    final_stage = dockerfile[dockerfile.rindex("\nFROM ") :]
    assert "USER 65532:65532" in final_stage
    assert 'ENTRYPOINT ["salad-vk"]' in final_stage
    assert 'CMD ["run"]' in final_stage
    # Nothing of the source tree reaches the final stage: only the builder's wheel.
    assert "COPY" not in final_stage
    assert "--no-cache-dir" in final_stage
