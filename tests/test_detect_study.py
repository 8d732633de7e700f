"""The detection study's experiment: conditions, test sets, intervals and paired differences, and the CLI's
train -> eval -> report on a toy FF++/Celeb-DF index whose per-frame fakes flicker and whose refined fakes
do not."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from nice_core.cli import main
from nice_core.detect.index import VideoEntry, read_index, write_index
from nice_core.detect.study import (
    clips_path,
    condition_entries,
    entries_of_test_set,
    interval,
    paired_differences,
    summarise,
)
from nice_core.detect.train import temporal_toy_clips
from nice_core.errors import InputError
from nice_core.provenance.watermark import embed


def test_the_interval_uses_students_t_and_one_seed_has_none() -> None:
    one = interval([0.8])
    assert (one.mean, one.low, one.high, one.n) == (0.8, 0.8, 0.8, 1)
    three = interval([0.7, 0.8, 0.9])  # sd 0.1, t(2) = 4.303: half width 4.303 * 0.1 / sqrt(3)
    assert three.mean == pytest.approx(0.8) and three.high - three.mean == pytest.approx(0.248434, abs=1e-6)
    assert interval([0.5, float("nan"), 0.7]).n == 2
    with pytest.raises(ValueError, match="no values"):
        interval([])


def test_paired_differences_are_taken_seed_by_seed() -> None:
    def record(condition: str, seed: int, auc: float) -> dict:
        return {"condition": condition, "seed": seed, "test_set": "celebdf", "metrics": {"auc": auc}}

    # B beats A by exactly 0.05 at every seed, though the seeds' spread (0.1) is wider than the gap.
    results = [record("A", 1, 0.6), record("A", 2, 0.7), record("A", 3, 0.8),
               record("B", 1, 0.65), record("B", 2, 0.75), record("B", 3, 0.85), record("C", 1, 0.9)]
    diffs = paired_differences(results, "A", "auc")
    assert diffs[("B", "celebdf")].mean == pytest.approx(0.05)
    assert diffs[("B", "celebdf")].high - diffs[("B", "celebdf")].low == pytest.approx(0.0, abs=1e-12)
    assert diffs[("C", "celebdf")].n == 1  # only seed 1 is paired


def _entry(id_: str, label: int, source: str, split: str, people: tuple[str, ...], dataset: str = "ffpp") -> VideoEntry:
    return VideoEntry(id_, f"/data/{id_}.mp4", label, source, split, people, dataset)


def test_conditions_train_on_their_sources_and_test_sets_keep_the_fakes_apart() -> None:
    entries = [_entry("ffpp/original/c23/000", 0, "original", "train", ("ffpp:000",)),
               _entry("ffpp/FaceSwap/c23/000_001", 1, "per-frame", "train", ("ffpp:000", "ffpp:001")),
               _entry("ffpp-refined/FaceSwap/c23/000_001", 1, "refined", "train", ("ffpp:000", "ffpp:001")),
               _entry("ffpp/original/c23/002", 0, "original", "test", ("ffpp:002",)),
               _entry("ffpp/FaceSwap/c23/002_003", 1, "per-frame", "test", ("ffpp:002", "ffpp:003")),
               _entry("ffpp-refined/FaceSwap/c23/002_003", 1, "refined", "test", ("ffpp:002", "ffpp:003")),
               _entry("celebdf/Celeb-real/id0_0000", 0, "original", "test", ("celebdf:id0",), "celebdf"),
               _entry("celebdf/Celeb-synthesis/id0_id1_0000", 1, "external", "test", ("celebdf:id0", "celebdf:id1"),
                      "celebdf")]
    ids = lambda found: [e.id.split("/")[0] + ":" + e.source for e in found]  # noqa: E731
    trained = condition_entries(entries, ("original", "refined"), "train")
    assert ids(trained) == ["ffpp:original", "ffpp-refined:refined"]
    assert ids(entries_of_test_set(entries, "ffpp-per-frame")) == ["ffpp:original", "ffpp:per-frame"]
    assert ids(entries_of_test_set(entries, "ffpp-refined")) == ["ffpp:original", "ffpp-refined:refined"]
    assert ids(entries_of_test_set(entries, "celebdf")) == ["celebdf:original", "celebdf:external"]
    with pytest.raises(InputError, match="unknown test set 'dfdc'"):
        entries_of_test_set(entries, "dfdc")


def _write_clips(path: Path, clips: np.ndarray, reason: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("clips", data=clips)
        h5.create_dataset("starts", data=np.arange(len(clips), dtype=np.int64))
        h5.attrs.update(video=path.stem, video_sha256=f"sha-{path.stem}-{len(clips)}", store_sha256="-", length=8,
                        size=32, reason=reason)


def _toy_study(root: Path) -> tuple[Path, Path]:
    """An FF++-like index (10 train, 4 val, 4 test targets with a pair each) and Celeb-DF test videos, with toy
    clips: reals and refined fakes are still, per-frame fakes flicker (the class is only temporal)."""
    clips_dir, entries, k = root / "clips", [], 0
    people = [f"{i:03d}" for i in range(18)]
    splits = {"train": people[:10], "val": people[10:14], "test": people[14:]}

    def clip_array(fake: bool) -> np.ndarray:
        nonlocal k
        k += 1
        data = temporal_toy_clips(8, frames=8, size=32, seed=k, offset_std=0.15)  # even clips still, odd flicker
        pick = [1, 3, 5, 7] if fake else [0, 2, 4, 6]
        return (data.clips[pick].permute(0, 2, 3, 4, 1).numpy() * 255).round().astype(np.uint8)

    for split, people in splits.items():
        for i, person in enumerate(people):
            other = people[(i + 1) % len(people)]
            real = _entry(f"ffpp/original/c23/{person}", 0, "original", split, (f"ffpp:{person}",))
            for entry, fake in ((real, False),
                                (_entry(f"ffpp/FaceSwap/c23/{person}_{other}", 1, "per-frame", split,
                                        (f"ffpp:{person}", f"ffpp:{other}")), True),
                                (_entry(f"ffpp-refined/FaceSwap/c23/{person}_{other}", 1, "refined", split,
                                        (f"ffpp:{person}", f"ffpp:{other}")), False)):
                entries.append(entry)
                _write_clips(clips_path(clips_dir, entry), clip_array(fake))
    for n in range(4):
        for entry, fake in ((_entry(f"celebdf/Celeb-real/id{n}_0000", 0, "original", "test", (f"celebdf:id{n}",),
                                    "celebdf"), False),
                            (_entry(f"celebdf/Celeb-synthesis/id{n}_id{n + 10}_0000", 1, "external", "test",
                                    (f"celebdf:id{n}", f"celebdf:id{n + 10}"), "celebdf"), True)):
            entries.append(entry)
            _write_clips(clips_path(clips_dir, entry), clip_array(fake))
    short = _entry("celebdf/Celeb-real/id20_0000", 0, "original", "test", ("celebdf:id20",), "celebdf")
    entries.append(short)
    _write_clips(clips_path(clips_dir, short), np.zeros((0, 8, 32, 32, 3), np.uint8),
                 reason="no 8 consecutive frames with a face in one shot (longest run: 3 of 5 frames)")
    dark = _entry("ffpp/original/c23/099", 0, "original", "train", ("ffpp:099",))  # a training video without one
    entries.append(dark)
    _write_clips(clips_path(clips_dir, dark), np.zeros((0, 8, 32, 32, 3), np.uint8),
                 reason="no 8 consecutive frames with a face in one shot (longest run: 0 of 30 frames)")
    write_index(root / "index.json", entries)
    return root / "index.json", clips_dir


@pytest.mark.slow
def test_the_cli_trains_evaluates_and_reports_paired_conditions(tmp_path: Path) -> None:
    index, clips_dir = _toy_study(tmp_path)
    common = ["--index", str(index), "--clips-dir", str(clips_dir)]
    evals = []
    for condition in ("A", "B"):
        for seed in (1, 2):
            run = tmp_path / "runs" / f"{condition}-{seed}"
            assert main(["detect", "train", *common, "--condition", condition, "--seed", str(seed), "--run-dir",
                         str(run), "--steps", "250", "--val-every", "125", "--lr", "0.002", "--threads", "2"]) == 0
            for test_set in ("ffpp-per-frame", "ffpp-refined", "celebdf"):
                out = tmp_path / "evals" / f"{condition}-{seed}-{test_set}.json"
                assert main(["detect", "eval", "--model", str(run / "model.safetensors"), *common, "--test-set",
                             test_set, "-o", str(out), "--threads", "2"]) == 0
                evals.append(out)
    record = json.loads((tmp_path / "evals" / "A-1-ffpp-per-frame.json").read_text())
    assert record["metrics"]["n"] == 8 and record["init"] == "from scratch" and record["steps"] == 250
    train = json.loads((tmp_path / "runs" / "A-1" / "train.json").read_text())
    assert train["train_videos"] == 20 and train["val_videos"] == 8 and train["best_step"] in (125, 250)
    by: dict[tuple[str, str], list[float]] = {}
    for p in evals:
        condition, _, test_set = p.stem.split("-", 2)
        by.setdefault((condition, test_set), []).append(json.loads(p.read_text())["metrics"]["auc"])
    auc = {key: float(np.mean(values)) for key, values in by.items()}  # over the two seeds
    # A learned the flicker: it finds the per-frame fakes and Celeb-DF's flickering fakes ...
    assert auc[("A", "ffpp-per-frame")] >= 0.85 and auc[("A", "celebdf")] >= 0.85
    # ... the still refined fakes fool it; B, trained on fakes as still as its reals, learns nothing.
    assert auc[("A", "ffpp-refined")] <= 0.75 and auc[("B", "ffpp-refined")] <= 0.75
    assert auc[("B", "ffpp-per-frame")] <= 0.75
    celeb = json.loads((tmp_path / "evals" / "A-1-celebdf.json").read_text())
    assert celeb["metrics"]["n"] == 8
    assert [f["id"] for f in celeb["left_out"]] == ["celebdf/Celeb-real/id20_0000", "ffpp/original/c23/099"]

    probe_dir = tmp_path / "probe"  # the Celeb-DF reals' clips with nice-core's mark in every frame
    for entry in entries_of_test_set(read_index(index), "celebdf"):
        if entry.label == 0:
            with h5py.File(clips_path(clips_dir, entry)) as h5:
                clips = h5["clips"][()]
            marked = np.array([[embed(frame, 0x2A5F1) for frame in clip] for clip in clips], np.uint8)
            _write_clips(clips_path(probe_dir, entry), marked)
    for seed in (1, 2):
        out = tmp_path / "evals" / f"A-{seed}-celebdf.json"
        assert main(["detect", "eval", "--model", str(tmp_path / "runs" / f"A-{seed}" / "model.safetensors"), *common,
                     "--test-set", "celebdf", "-o", str(out), "--probe-clips-dir", str(probe_dir)]) == 0
    probe = json.loads((tmp_path / "evals" / "A-1-celebdf.json").read_text())["watermark_probe"]
    assert probe["reals"] == 4 and probe["change"] == pytest.approx(probe["mean_fake_score_marked"]
                                                                    - probe["mean_fake_score"])

    again = tmp_path / "again.json"  # the same model scores the same, bit for bit
    assert main(["detect", "eval", "--model", str(tmp_path / "runs" / "A-1" / "model.safetensors"), *common,
                 "--test-set", "celebdf", "-o", str(again), "--threads", "2"]) == 0
    assert json.loads(again.read_text())["videos"] == celeb["videos"]

    assert main(["detect", "report", *map(str, evals), "--report-dir", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "detection.json").read_text())
    assert {(r["condition"], r["test_set"]) for r in data["rows"]} == {
        (c, t) for c in "AB" for t in ("ffpp-per-frame", "ffpp-refined", "celebdf")}
    assert all(r["seeds"] == [1, 2] for r in data["rows"])
    diff = next(d for d in data["differences"] if (d["condition"], d["test_set"], d["metric"]) ==
                ("B", "ffpp-per-frame", "auc"))
    row = {(r["condition"], r["test_set"]): r["metrics"]["auc"]["mean"] for r in data["rows"]}
    assert diff["mean"] == pytest.approx(row[("B", "ffpp-per-frame")] - row[("A", "ffpp-per-frame")])
    assert data["start_weights"] == ["from scratch"] and data["left_out"][0]["reason"].startswith("no 8 consecutive")
    # every video left out is listed: the test set's and the training's
    assert [f["id"] for f in data["left_out"]] == ["celebdf/Celeb-real/id20_0000", "ffpp/original/c23/099"]
    csv_lines = (tmp_path / "report" / "detection.csv").read_text().splitlines()
    assert csv_lines[0].startswith("kind,condition,baseline,test_set,metric,mean,ci95_low,ci95_high")
    assert sum(line.startswith("paired difference,B,A,") for line in csv_lines) == 9
    (p,) = data["watermark_probe"]
    assert (p["condition"], p["test_set"], p["seeds"]) == ("A", "celebdf", 2) and p["spread"] is not None
    html = (tmp_path / "report" / "detection.html").read_text()
    assert html.count("<svg") == 3 and "B − A" in html and "id20_0000" in html and "Synthetic media" in html
    assert "Watermark probe" in html and ("within the spread" in html or "beyond the spread" in html)
    _curves_are_drawn(tmp_path / "report" / "detection.html", tmp_path)


def _curves_are_drawn(page: Path, tmp_path: Path) -> None:
    """Headless Chromium draws the page: condition A's ROC curves (its colour) span a chart's width."""
    import shutil
    import subprocess

    import av

    from nice_core.detect.report import PALETTE

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium); CI installs it")
    png = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,2600",
                    page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    with av.open(str(png)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)
    colour = np.array([int(PALETTE[0][i:i + 2], 16) for i in (1, 3, 5)])
    mask = np.abs(image - colour).max(axis=2) <= 40
    columns = np.flatnonzero(mask.any(axis=0))
    assert mask.sum() > 800 and columns.max() - columns.min() > 250, (mask.sum(), columns.min(), columns.max())


def test_bad_study_inputs_get_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    index, clips_dir = tmp_path / "index.json", tmp_path / "clips"
    write_index(index, [_entry("ffpp/original/c23/000", 0, "original", "train", ("ffpp:000",))])
    code = main(["detect", "train", "--index", str(index), "--clips-dir", str(clips_dir), "--condition", "Z",
                 "--run-dir", str(tmp_path / "run")])
    assert code != 0 and "condition 'Z' is not one of A, B, C" in capsys.readouterr().err
    code = main(["detect", "train", "--index", str(index), "--clips-dir", str(clips_dir), "--condition", "D",
                 "--sources", "per-frame,refined", "--run-dir", str(tmp_path / "run")])
    assert code != 0 and "condition D: needs 'original'" in capsys.readouterr().err
    code = main(["detect", "train", "--index", str(index), "--clips-dir", str(clips_dir), "--condition", "A",
                 "--run-dir", str(tmp_path / "run")])
    assert code != 0 and "no clips for ffpp/original/c23/000" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code = main(["detect", "report", str(bad), "--report-dir", str(tmp_path / "report")])
    assert code != 0 and "not a detector eval record" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "report").exists()


def test_summarise_gives_rows_per_condition_and_test_set() -> None:
    results = [{"condition": c, "seed": s, "test_set": "celebdf",
                "metrics": {"auc": 0.5 + 0.1 * s, "balanced_acc": 0.5, "acc": 0.5, "n": 10}}
               for c in "AB" for s in (1, 2)]
    summary = summarise(results)
    assert [r["condition"] for r in summary["rows"]] == ["A", "B"]
    assert [r["metrics"]["auc"]["mean"] for r in summary["rows"]] == pytest.approx([0.65, 0.65])
    assert {d["metric"] for d in summary["differences"]} == {"auc", "balanced_acc", "acc"}


def test_the_report_says_where_reals_and_fakes_reached_the_detector_by_different_encodings() -> None:
    from nice_core.detect.report import encoding_parity

    ours, theirs = "h264 yuv420p CRF 23, written by nice-core", "h264 yuv420p CRF 23, as found"
    record = {"condition": "B", "seed": 1, "test_set": "ffpp-refined",
              "encodings": {"train": {"original": {theirs: 4}, "refined": {ours: 4}},
                            "test": {"original": {ours: 2}, "refined": {ours: 2}}}}
    found = encoding_parity([record, {**record, "seed": 2}, {**record, "test_set": "celebdf", "encodings": None}])
    assert [(p["videos"], p["one_path"]) for p in found] == [("training of B", False),
                                                            ("test set ffpp-refined", True)]
    assert found[0]["by_source"]["original"] == {theirs: 4}
