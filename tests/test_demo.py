"""``salad-vk demo`` shows scale-up and scale-down offline and leaves nothing running."""

import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_to_the_end_and_cleans_up(tmp_path: Path) -> None:
    # Its scratch folders go under tmp_path: in /tmp, another run's demo (a second
    # checkout's suite) would come and go beside this one's.
    before = {p.name for p in tmp_path.glob("salad-vk-demo-*")}
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "demo", "--replicas", "6"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "nodes Ready: 3/3" in out
    assert "scale-up shown: 6 pods Running, one container group each" in out
    assert "scale-down shown: no pod and no container group left" in out
    assert out.rstrip().endswith("control plane stopped")
    left = {p.name for p in tmp_path.glob("salad-vk-demo-*")} - before
    assert left == set(), "the demo removed its scratch folders"
