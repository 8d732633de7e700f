"""The Snakemake workflow on a tiny config: one good and one broken video, then a rerun after the fix."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "workflow" / "Snakefile"),
           "--directory", str(workdir), "--cores", "2", "--keep-going", *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_a_broken_video_fails_alone_and_a_rerun_redoes_only_it(short_clip, bad_inputs, tmp_path):
    good = tmp_path / "good.mp4"
    broken = tmp_path / "broken.mp4"
    shutil.copy(short_clip, good)
    shutil.copy(bad_inputs["truncated"], broken)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["videos"] = {"good": str(good), "broken": str(broken)}
    config["face"].update(crop_size=64, preview=True)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    first = snakemake(tmp_path)
    assert first.returncode != 0
    work = tmp_path / "results" / "work"
    assert (work / "good" / "face.h5").is_file() and (work / "good" / "preview.mp4").is_file()
    assert not (work / "broken" / "probe.json").exists()
    log = (tmp_path / "results" / "logs" / "extract" / "broken.log").read_text()
    assert "nice-core: error: video is truncated" in log
    assert "Traceback" not in log
    assert (tmp_path / "results" / "benchmarks" / "track" / "good.tsv").is_file()

    stamp = (work / "good" / "face.h5").stat().st_mtime_ns
    shutil.copy(short_clip, broken)  # the user replaces the broken download
    second = snakemake(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert (work / "broken" / "face.h5").is_file()
    assert (work / "good" / "face.h5").stat().st_mtime_ns == stamp, "a finished video was recomputed"
    assert "tracked 2 video(s)" in second.stdout + second.stderr

    third = snakemake(tmp_path, "--dry-run")
    assert "Nothing to be done" in third.stdout + third.stderr


def test_a_typo_in_the_config_stops_the_workflow_before_any_job(short_clip, tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["videos"] = {"good": str(short_clip)}
    config["face"]["crop_sise"] = 64
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "--dry-run")
    assert done.returncode != 0
    assert "unknown TrackConfig key(s) in config.yaml: crop_sise" in done.stdout + done.stderr
