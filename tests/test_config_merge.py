"""A run of only the user's own videos, with --configfile and without editing config.yaml (issue 12, item 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nice_core.inputs.videos import workflow_videos

from conftest import ROOT, WORKFLOW


def test_a_null_entry_removes_a_video(tiny_clip: Path) -> None:
    videos = workflow_videos({"videos": {"sample": None, "mine": str(tiny_clip)}})
    assert list(videos) == ["mine"]


@pytest.mark.slow
def test_snakemake_runs_only_the_users_videos(tiny_clip: Path, tmp_path: Path) -> None:
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"videos": {"sample": None, "mine": str(tiny_clip)},
                                    "results": str(tmp_path / "results")}))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(WORKFLOW), "-n", "--cores", "1",
                             "--configfile", str(user)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    assert "mine" in log and "wildcards: name=sample" not in log and "/sample/" not in log
