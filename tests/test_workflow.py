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
    assert (work / "good" / "proxy_check.json").is_file()
    assert not (work / "broken" / "probe.json").exists()
    log = (tmp_path / "results" / "logs" / "extract" / "broken.log").read_text()
    assert "nice-core: error: video is truncated" in log
    assert "Traceback" not in log
    assert (tmp_path / "results" / "benchmarks" / "track" / "good.tsv").is_file()
    report = (tmp_path / "results" / "report" / "report.html").read_text()
    assert "broken" in report and "video is truncated" in report  # the failure is listed with its error
    assert (tmp_path / "results" / "report" / "videos" / "good.html").is_file()

    stamp = (work / "good" / "face.h5").stat().st_mtime_ns
    shutil.copy(short_clip, broken)  # the user replaces the broken download
    second = snakemake(tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert (work / "broken" / "face.h5").is_file()
    assert (work / "good" / "face.h5").stat().st_mtime_ns == stamp, "a finished video was recomputed"
    assert "nice-core: 2 video(s) done. Report:" in second.stdout + second.stderr
    assert (work / "broken" / "proxy.mp4").is_file() and (work / "broken" / "proxy_check.json").is_file()
    assert "report.html" in second.stdout + second.stderr
    assert "video is truncated" not in (tmp_path / "results" / "report" / "report.html").read_text()

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


def test_external_swapper_benchmark_set_and_given_proxy(short_clip, tmp_path):
    """Three sources in one run: a proxy made by an external tool (the built-in swapper run through the
    template, a real command), a benchmark folder, and a given proxy whose check finds a 2-frame delay."""
    import json

    from nice_core.proxy.benchmark import BenchConfig, make_benchmark

    from conftest import run_ffmpeg

    make_benchmark(short_clip, tmp_path / "bench1", BenchConfig(frames=12), show_progress=False)
    late = tmp_path / "late.mp4"
    run_ffmpeg("-i", str(short_clip), "-vf", "tpad=start=2:start_mode=clone", "-frames:v", "50", "-an",
               "-c:v", "libx264", "-preset", "veryfast", str(late))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["videos"] = {"selfswap": str(short_clip),
                        "given": {"target": str(short_clip), "proxy": str(late)}}
    config["benchmarks"] = [str(tmp_path / "bench1")]
    config["proxy"]["generator"] = "external"
    config["external"].update(preset="nice-core")
    config["face"].update(crop_size=64, preview=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "results" / "work"
    assert (work / "selfswap" / "proxy.mp4").is_file()
    assert "48/48 frames swapped" in (tmp_path / "results" / "logs" / "proxy" / "selfswap.tool.log").read_text()
    assert json.loads((work / "given" / "proxy_check.json").read_text())["frame_offset"] == 2
    assert not (work / "given" / "proxy.mp4").exists()
    assert (work / "bench__bench1" / "proxy_check.json").is_file()


def test_a_missing_external_tool_stops_the_run_before_any_job(short_clip, tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["videos"] = {"good": str(short_clip)}
    config["proxy"]["generator"] = "external"
    config["external"].update(preset="fsgan", tool_root=str(tmp_path / "no-fsgan"))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "--dry-run")
    assert done.returncode != 0
    assert "external swapper fsgan is not usable: missing file" in done.stdout + done.stderr


def test_a_faceforensics_tree_with_a_split(short_clip, tmp_path):
    """A fake FF++ c23 tree (links to one clip of one person): each manipulated video is paired with its
    target, and the split file keeps a subset."""
    import json

    root = tmp_path / "FF++"
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    originals.mkdir(parents=True)
    for vid in ("000", "003", "010"):
        (originals / f"{vid}.mp4").symlink_to(short_clip)
    for method in ("FaceSwap", "Deepfakes"):
        folder = root / "manipulated_sequences" / method / "c23" / "videos"
        folder.mkdir(parents=True)
        for pair in ("000_003", "010_000"):
            (folder / f"{pair}.mp4").symlink_to(short_clip)
    split = tmp_path / "test.json"
    split.write_text(json.dumps([["003", "000"]]))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["videos"] = {}
    config["ffpp"] = {"root": str(root), "methods": ["FaceSwap", "Deepfakes"], "compression": "c23",
                      "split": str(split)}
    config["face"].update(crop_size=64, preview=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "results" / "work"
    assert sorted(p.name for p in work.iterdir()) == ["Deepfakes__c23__000_003", "FaceSwap__c23__000_003"]
    check = json.loads((work / "FaceSwap__c23__000_003" / "proxy_check.json").read_text())
    assert check["frame_offset"] == 0
