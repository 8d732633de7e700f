"""The Snakemake workflow on tiny configs: broken videos beside a good one, a rerun after the fixes, sources."""

import csv
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nice_core.inputs.videos import target_key
from nice_core.io import VideoReader, video_encoding
from nice_core.io.digest import file_sha256

from conftest import run_ffmpeg, run_snakemake, write_workflow_config

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, *extra)


def jobs_run(done: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    """(rule, video) of every job a Snakemake run started, from its log on stderr ((rule, target key) for the
    per-target rules)."""
    jobs, rule = set(), None
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("wildcards:") and rule:
            jobs |= {(rule, w.split("=", 1)[1].rstrip(",")) for w in line.split()[1:]
                     if w.startswith(("video=", "target="))}
    return jobs


def test_broken_videos_fail_alone_and_a_rerun_redoes_only_them(tiny_clip, bad_inputs, no_face_clip, tmp_path):
    """Three videos broken three ways (a truncated download, no face, a proxy of another video) beside a good
    one, run with the local profile: each fails only its own jobs, with its error in its log and in the
    data-set report. After the fixes the same command redoes only what failed, and then nothing."""
    truncated, noface, flipped = tmp_path / "truncated.mp4", tmp_path / "noface.mp4", tmp_path / "flipped.mp4"
    shutil.copy(bad_inputs["truncated"], truncated)
    shutil.copy(no_face_clip, noface)
    run_ffmpeg("-i", str(tiny_clip), "-vf", "hflip", "-an", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast",
               str(flipped))
    videos = {"good": tiny_clip, "truncated": truncated, "noface": noface,
              "mismatch": {"target": str(tiny_clip), "proxy": str(flipped)}}
    write_workflow_config(tmp_path, videos, face={"preview": True})
    command = ("--cores", "2")

    first = run_snakemake(tmp_path, *command, profile="local")
    assert first.returncode != 0
    work, logs = tmp_path / "results" / "work", tmp_path / "results" / "logs"
    key = {name: target_key(path) for name, path in
           {"good": tiny_clip, "truncated": truncated, "noface": noface, "mismatch": tiny_clip}.items()}
    assert key["good"] == key["mismatch"]  # one target, probed and tracked once for both videos
    folder = {name: work / "_targets" / key[name] for name in key}
    good_files = {p: p.stat().st_mtime_ns for d in (work / "good", folder["good"]) for p in d.rglob("*")
                  if p.is_file() and p.name != "motion.h5"}  # the target's flow is temporary: gone once all evals ran
    assert {p.name for p in good_files} >= {"probe.json", "face.h5", "preview.mp4", "proxy.mp4", "proxy_check.json",
                                           "metrics.json", "provenance.json"}
    assert (tmp_path / "results" / "benchmarks" / "track" / f"{key['good']}.tsv").is_file()
    errors = {  # video -> (the rule that fails, its error line, outputs that must not exist)
        "truncated": ("extract", "nice-core: error: video is truncated", folder["truncated"] / "probe.json"),
        "noface": ("track", "nice-core: error: no face found in any of the 25 frames", folder["noface"] / "face.h5"),
        "mismatch": ("proxy_check", "nice-core: error: proxy does not match target",
                     work / "mismatch" / "proxy_check.json"),
    }
    report = json.loads((tmp_path / "results" / "report" / "report.json").read_text())
    report_html = (tmp_path / "results" / "report" / "report.html").read_text()
    listed = {f["name"]: f for f in report["failures"]}
    assert set(listed) == set(errors), report["failures"]
    for name, (rule, message, missing) in errors.items():
        log = (logs / rule / f"{key[name] if rule in ('extract', 'track') else name}.log").read_text()
        assert message in log and "Traceback" not in log, log[-2000:]
        assert not missing.exists()
        assert listed[name]["rule"] == rule and message.removeprefix("nice-core: error: ") in listed[name]["message"]
        assert message.removeprefix("nice-core: error: ") in report_html
    assert (folder["noface"] / "probe.json").is_file() and (folder["mismatch"] / "face.h5").is_file()
    assert (tmp_path / "results" / "report" / "videos" / "good.html").is_file()

    shutil.copy(tiny_clip, truncated)  # the user replaces the broken download,
    shutil.copy(tiny_clip, noface)  # the video without a face,
    shutil.copy(tiny_clip, flipped)  # and the wrong proxy
    second = run_snakemake(tmp_path, *command, profile="local")
    assert second.returncode == 0, second.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in good_files} == good_files, "a finished video was recomputed"
    # only what failed: the two broken targets' probe and tracking, and every job of the three videos
    assert {video for _, video in jobs_run(second)} == {*errors, key["truncated"], key["noface"]}
    assert not {("extract", key["good"]), ("track", key["good"])} & jobs_run(second)  # "mismatch"'s target
    for name in errors:
        assert (work / name / "metrics.json").is_file() and (work / name / "provenance.json").is_file()
    assert "nice-core: 4 video(s) done. Report:" in second.stdout + second.stderr
    assert json.loads((tmp_path / "results" / "report" / "report.json").read_text())["failures"] == []

    third = run_snakemake(tmp_path, *command, "--dry-run", profile="local")
    assert "Nothing to be done" in third.stdout + third.stderr

    record = json.loads((work / "good" / "provenance.json").read_text())
    assert record["inputs"]["target"]["sha256"] == file_sha256(tiny_clip)
    assert record["results"]["metrics"]["sha256"] == file_sha256(work / "good" / "metrics.json")
    assert record["config"]["face"]["crop_size"] == 64 and record["versions"]["nice-core"]
    summary = tmp_path / "snakemake-report.zip"  # Snakemake's own report: the data-set page and the records
    done = run_snakemake(tmp_path, "--report", str(summary), profile="local")
    assert done.returncode == 0, done.stderr[-2000:]
    names = zipfile.ZipFile(summary).namelist()
    assert sum(n.endswith("/provenance.json") for n in names) == 4 and any(n.endswith("/report.html") for n in names)


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("face", "crop_sise", 64, "face.crop_sise: unknown key; did you mean crop_size?"),
    ("face", "crop_size", 128.5, "face.crop_size: 128.5 is not of type 'integer'"),
    ("encode", "crf", "high", "encode.crf: 'high' is not of type 'integer', 'null'"),
    ("proxy", "max_ofset", 3, "proxy.max_ofset: unknown key; did you mean max_offset?"),
    ("resources", "carier", {"threads": 1}, "resources.carier: unknown key; did you mean carrier?"),
    ("carrier", "fit", {"size": 100}, "carrier.fit: size 100 must be a multiple of 16"),
])
def test_a_config_error_stops_the_workflow_before_any_job_in_one_line(short_clip, tmp_path, section, key, value,
                                                                      message):
    write_workflow_config(tmp_path, {"good": str(short_clip)}, **{section: {key: value}})
    done = snakemake(tmp_path, "--dry-run")
    assert done.returncode != 0
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "error" in line.lower()]
    assert errors == [f"nice-core: error: config.yaml: {message}"] or message in errors[0], errors
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()


def test_a_typo_at_the_top_level_is_caught(short_clip, tmp_path):
    write_workflow_config(tmp_path, {"good": str(short_clip)}, reults="elsewhere")
    done = snakemake(tmp_path, "--dry-run")
    assert done.returncode != 0
    assert "nice-core: error: config.yaml: reults: unknown key; did you mean results?" in done.stderr


def test_external_swapper_benchmark_set_and_given_proxy(short_clip, tmp_path):
    """Three sources in one run: a proxy made by an external tool (the built-in swapper run through the
    template, a real command), a benchmark folder, and a given proxy whose check finds a 2-frame delay. The
    run stops at the proxy checks (its targets): what follows them is the same chain the other tests run."""
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark

    make_benchmark(short_clip, tmp_path / "bench1", BenchConfig(frames=12), show_progress=False)
    late = tmp_path / "late.mp4"
    run_ffmpeg("-i", str(short_clip), "-vf", "tpad=start=2:start_mode=clone", "-frames:v", "50", "-an",
               "-c:v", "libx264", "-preset", "veryfast", str(late))
    write_workflow_config(tmp_path, {"selfswap": short_clip, "given": {"target": str(short_clip), "proxy": str(late)}},
                          benchmarks=[str(tmp_path / "bench1")], proxy={"generator": "external"},
                          external={"preset": "nice-core"})
    checks = [f"results/work/{name}/proxy_check.json" for name in ("selfswap", "given", "bench__bench1")]
    done = snakemake(tmp_path, *checks)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "results" / "work"
    assert not list(work.rglob("carrier.safetensors"))  # the targets were the checks, not the whole chain
    assert (work / "selfswap" / "proxy.mp4").is_file()
    assert "48/48 frames swapped" in (tmp_path / "results" / "logs" / "proxy" / "selfswap.tool.log").read_text()
    assert json.loads((work / "given" / "proxy_check.json").read_text())["frame_offset"] == 2
    assert not (work / "given" / "proxy.mp4").exists()
    assert (work / "bench__bench1" / "proxy_check.json").is_file()


def test_a_missing_external_tool_stops_the_run_before_any_job(short_clip, tmp_path):
    write_workflow_config(tmp_path, {"good": str(short_clip)}, proxy={"generator": "external"},
                          external={"preset": "fsgan", "tool_root": str(tmp_path / "no-fsgan")})
    done = snakemake(tmp_path, "--dry-run")
    assert done.returncode != 0
    assert "external swapper fsgan is not usable: missing file" in done.stdout + done.stderr


def test_a_warm_start_runs_each_targets_later_methods_from_its_first(short_clip, tmp_path):
    """`carrier.warm_start: N`: the run's first method of an original is fitted in full; the other's fit needs
    that carrier (an input, so it waits for it) and starts from it with N steps (a dry run: the commands)."""
    root = tmp_path / "FF++"
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    originals.mkdir(parents=True)
    for vid in ("000", "003"):
        (originals / f"{vid}.mp4").symlink_to(short_clip)
    for method in ("FaceSwap", "Deepfakes"):
        folder = root / "manipulated_sequences" / method / "c23" / "videos"
        folder.mkdir(parents=True)
        (folder / "000_003.mp4").symlink_to(short_clip)
    ffpp = {"root": str(root), "methods": ["FaceSwap", "Deepfakes"], "compression": "c23"}
    write_workflow_config(tmp_path, {}, ffpp=ffpp, carrier={"warm_start": 600})
    done = snakemake(tmp_path, "--dry-run", "--printshellcmds")
    assert done.returncode == 0, done.stderr[-3000:]
    fits = [line for line in done.stdout.splitlines() if "nice-core fit" in line]
    assert len(fits) == 2
    first = Path("results") / "work" / "Deepfakes__c23__000_003" / "carrier.safetensors"  # the run's first video
    warm = [line for line in fits if "--init" in line]
    assert len(warm) == 1 and f"--init {first} --set steps=600" in warm[0] and "FaceSwap__c23__000_003" in warm[0]
    write_workflow_config(tmp_path, {}, ffpp=ffpp)
    done = snakemake(tmp_path, "--dry-run", "--printshellcmds")
    assert "--init" not in done.stdout  # off by default


def test_a_faceforensics_tree_with_a_split(tiny_clip, tmp_path):
    """A fake FF++ c23 tree (links to one clip of one person): each manipulated video is paired with its
    target, and the split file keeps a subset. The two methods share their target: it is probed and tracked
    once, and the two videos' jobs, run side by side on 2 cores, give the same results (their proxies are
    the same frames)."""
    root = tmp_path / "FF++"
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    originals.mkdir(parents=True)
    for vid in ("000", "003", "010"):
        (originals / f"{vid}.mp4").symlink_to(tiny_clip)
    for method in ("FaceSwap", "Deepfakes"):
        folder = root / "manipulated_sequences" / method / "c23" / "videos"
        folder.mkdir(parents=True)
        for pair in ("000_003", "010_000"):
            (folder / f"{pair}.mp4").symlink_to(tiny_clip)
    split = tmp_path / "test.json"
    split.write_text(json.dumps([["003", "000"]]))
    write_workflow_config(tmp_path, {}, ffpp={"root": str(root), "methods": ["FaceSwap", "Deepfakes"],
                                           "compression": "c23", "split": str(split)})
    # one thread per job, so two jobs share the 2 cores at once: each must keep to its one
    one_thread = [f"{rule}=1" for rule in ("extract", "track", "motion", "proxy_check", "prior3d", "carrier",
                                           "composite", "evaluate")]
    done = snakemake(tmp_path, "--set-threads", *one_thread)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "results" / "work"
    assert sorted(p.name for p in work.iterdir()) == ["Deepfakes__c23__000_003", "FaceSwap__c23__000_003", "_targets"]
    assert [p.name for p in (work / "_targets").iterdir()] == [target_key(originals / "000.mp4")]
    timed = {rule: sorted(p.stem for p in (tmp_path / "results" / "benchmarks" / rule).glob("*.tsv"))
             for rule in ("extract", "track", "motion", "carrier")}  # one benchmark file per job
    for tsv in (tmp_path / "results" / "benchmarks").rglob("*.tsv"):  # CPU time over wall time, children too:
        with open(tsv) as f:  # another job beside it can only lower it, so this is a bound, not a timing
            row = next(csv.DictReader(f, delimiter="\t"))
        assert float(row["cpu_time"]) <= 1.2 * float(row["s"]) + 0.5, (tsv.relative_to(tmp_path), row)
    key = target_key(originals / "000.mp4")
    assert timed == {"extract": [key], "track": [key], "motion": [key],
                     "carrier": ["Deepfakes__c23__000_003", "FaceSwap__c23__000_003"]}
    assert not (work / "_targets" / key / "motion.h5").exists()  # temporary: gone once both evaluations ran
    refined = {method: tmp_path / "results" / "refined_sequences" / f"{method}-NICe" / "c23" / "videos" / "000_003.mp4"
               for method in ("FaceSwap", "Deepfakes")}
    with VideoReader(refined["FaceSwap"]) as a, VideoReader(refined["Deepfakes"]) as b:
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    for method in ("FaceSwap", "Deepfakes"):  # the refined videos mirror FF++'s layout and its c23 encoding
        refined = tmp_path / "results" / "refined_sequences" / f"{method}-NICe" / "c23" / "videos" / "000_003.mp4"
        assert refined.is_file(), refined
        assert video_encoding(refined)["crf"] == 23.0  # config.yaml says crf 18: FF++'s level wins
    check = json.loads((work / "FaceSwap__c23__000_003" / "proxy_check.json").read_text())
    assert check["frame_offset"] == 0
    # the report states how each row's videos are compressed (the proxies: the test clip's own CRF 18)
    report = json.loads((tmp_path / "results" / "report" / "report.json").read_text())
    rows = {row["label"]: row for row in report["rows"]}
    assert rows["FaceSwap + NICe"]["encodings"] == {"h264 yuv420p CRF 23": 1}
    assert rows["FaceSwap (proxy)"]["encodings"] == {"h264 yuv420p CRF 18": 1}


def test_the_deca_backend_makes_its_model_files_inputs_of_the_prior3d_rule(short_clip, tmp_path):
    """`prior3d.backend: deca` in the config: the user's DECA (and FLAME) files become inputs of the prior3d
    jobs (a replaced file reruns them) and reach the command; a missing one stops the run before any job."""
    model, flame = tmp_path / "models" / "deca_model.tar", tmp_path / "models" / "generic_model.pkl"
    prior3d = {"backend": "deca", "deca_model": str(model), "flame_model": str(flame)}
    write_workflow_config(tmp_path, {"good": str(short_clip)}, prior3d=prior3d)
    done = snakemake(tmp_path, "--dry-run", "--printshellcmds")
    assert done.returncode != 0 and "MissingInputException" in done.stdout + done.stderr
    assert str(model) in done.stdout + done.stderr
    model.parent.mkdir()
    model.write_bytes(b"stand-in")  # a dry run reads no file: its presence is what the DAG needs
    flame.write_bytes(b"stand-in")
    done = snakemake(tmp_path, "--dry-run", "--printshellcmds")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"--backend deca --deca-model {model} --flame-model {flame}" in done.stdout
    write_workflow_config(tmp_path, {"good": str(short_clip)}, prior3d={"backend": "deca"})
    done = snakemake(tmp_path, "--dry-run")
    assert done.returncode != 0
    assert "nice-core: error: config.yaml: prior3d: 'deca_model' is a required property" in done.stderr
