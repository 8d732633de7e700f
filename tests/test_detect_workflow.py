"""The detection study through the workflow: a small FF++ tree indexed, tracked once per original, its
videos re-encoded for parity, its clips cut (the fakes through their originals' stores), two seeds trained,
scored with the watermark probe, and reported; a rerun has nothing to do; a bad study config stops before
any job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nice_core.cli import main
from nice_core.inputs.videos import target_key

from conftest import run_ffmpeg, run_snakemake, write_workflow_config

pytestmark = pytest.mark.slow

# One fake per pair (FF++ has both directions; one keeps the test's job count down).
PAIRS = {"train": [("000", "001")], "val": [("002", "003")], "test": [("004", "005")]}


def _tree(root: Path, clip: Path) -> tuple[Path, dict[str, Path]]:
    """FF++ c23 with six originals (links to one clip) and FaceSwap fakes (a pixel-aligned colour edit)."""
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    fakes = root / "manipulated_sequences" / "FaceSwap" / "c23" / "videos"
    originals.mkdir(parents=True)
    fakes.mkdir(parents=True)
    edited = root / "edited.mp4"
    run_ffmpeg("-i", str(clip), "-vf", "eq=saturation=1.6:gamma_r=1.2", "-an", "-c:v", "libx264", "-crf", "18",
               "-preset", "veryfast", str(edited))
    splits = {}
    for split, pairs in PAIRS.items():
        for target, source in pairs:
            for person in (target, source):
                (originals / f"{person}.mp4").symlink_to(clip)
            (fakes / f"{target}_{source}.mp4").symlink_to(edited)
        splits[split] = root / f"{split}.json"
        splits[split].write_text(json.dumps([list(p) for p in pairs]))
    return originals, splits


def _study_config(tmp_path: Path, index: Path, **changes) -> None:
    detector = {"index": str(index), "conditions": {"A": ["original", "per-frame"]}, "seeds": [1, 2],
                "test_sets": ["ffpp-per-frame"], "clips": {"length": 8, "count": 2, "size": 32},
                "train": {"steps": 12, "val_every": 6, "batch_size": 4}, **changes}
    write_workflow_config(tmp_path, {}, detector=detector,
                          resources={r: {"threads": 1} for r in ("track", "detect_train", "detect_eval")})


def test_the_workflow_runs_a_study_end_to_end_and_a_rerun_does_nothing(tiny_clip, tmp_path):
    root = tmp_path / "FF++"
    originals, splits = _tree(root, tiny_clip)
    index = tmp_path / "index.json"
    assert main(["detect", "index", "--ffpp", str(root), "--method", "FaceSwap", "--compression", "c23",
                 *[a for split, path in splits.items() for a in ("--split", f"{split}={path}")],
                 "-o", str(index)]) == 0
    _study_config(tmp_path, index)
    report = "results/detect/report/detection.html"
    done = run_snakemake(tmp_path, report, profile="local")
    assert done.returncode == 0, done.stderr[-4000:]
    results = tmp_path / "results"
    tracked = sorted(p.stem for p in (results / "benchmarks" / "track").glob("*.tsv"))
    assert tracked == sorted(target_key(p) for p in originals.glob("*.mp4"))
    cut = results / "detect" / "clips"
    clips = sorted(str(p.relative_to(cut)) for p in cut.rglob("*.h5"))
    assert len(clips) == 9 and "ffpp/FaceSwap/c23/004_005.h5" in clips
    # every FF++ video went through nice-core's encoder: the originals as parity copies, the fakes labelled;
    # the copies are temporary (gone once their clips are cut)
    parity_logs = results / "logs" / "detect_parity" / "ffpp"
    assert len(list(parity_logs.rglob("*.log"))) == 9 and not list((results / "detect" / "parity").rglob("*.mp4"))
    assert "the data-set parity mark (not synthetic)" in (parity_logs / "original" / "c23" / "000.log").read_text()
    assert "a synthetic output's label" in (parity_logs / "FaceSwap" / "c23" / "000_001.log").read_text()
    probes = sorted(p.name for p in (results / "detect" / "probe_clips").rglob("*.h5"))
    assert probes == ["004.h5", "005.h5"]  # the test split's reals, cut again from copies marked as synthetic
    probe_log = results / "logs" / "detect_probe_video" / "ffpp" / "original" / "c23" / "004.log"
    assert "the watermark probe's stand-in" in probe_log.read_text()
    for seed in (1, 2):
        train = json.loads((results / "detect" / "runs" / f"A-{seed}" / "train.json").read_text())
        assert train["seed"] == seed and train["train_videos"] == 3 and train["val_videos"] == 3
        record = json.loads((results / "detect" / "evals" / f"A-{seed}-ffpp-per-frame.json").read_text())
        assert record["metrics"]["n"] == 3 and record["watermark_probe"]["reals"] == 2
    data = json.loads((results / "detect" / "report" / "detection.json").read_text())
    assert [(r["condition"], r["test_set"], r["seeds"]) for r in data["rows"]] == [("A", "ffpp-per-frame", [1, 2])]
    assert data["watermark_probe"][0]["seeds"] == 2
    one_path = "h264 yuv420p CRF 23, written by nice-core"
    assert [(p["videos"], p["one_path"]) for p in data["encoding_parity"]] == [("training of A", True),
                                                                               ("test set ffpp-per-frame", True)]
    train_val = {"original": {one_path: 4}, "per-frame": {one_path: 2}}  # the training's train and val videos
    assert data["encoding_parity"][0]["by_source"] == train_val
    assert (results / "logs" / "detect_train" / "A-1.log").is_file()
    assert (results / "benchmarks" / "detect_eval" / "A-2-ffpp-per-frame.tsv").is_file()
    again = run_snakemake(tmp_path, report, "--dry-run", profile="local")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_bad_study_stops_before_any_job(tmp_path):
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"format": "nice-core-detect-index/1", "videos": [
        {"id": "ffpp/FaceSwap/c23/000_001", "path": "/x/000_001.mp4", "label": 1, "source": "per-frame",
         "split": "train", "identities": ["ffpp:000", "ffpp:001"], "dataset": "ffpp", "method": "FaceSwap",
         "pair": "FaceSwap/000_001"}]}))
    _study_config(tmp_path, index)
    done = run_snakemake(tmp_path, "--dry-run", profile="local")
    assert done.returncode != 0
    assert "detector.index" in done.stderr and "test set ffpp-per-frame has no video" in done.stderr
    _study_config(tmp_path, index, conditions={"D": ["per-frame", "refined"]})
    done = run_snakemake(tmp_path, "--dry-run", profile="local")
    assert done.returncode != 0 and "condition D: needs 'original'" in done.stderr
