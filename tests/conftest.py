"""Shared fixtures: the bundled sample, short clips cut from it, and synthetic bad inputs.

Every clip is made here with the ffmpeg binary the package uses; tests swap or edit nobody's face.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from nice_core.io import ffmpeg_exe

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
WORKFLOW = ROOT / "workflow" / "Snakefile"
PROFILES = ROOT / "profiles"
#: What every workflow test changes in config.yaml to stay small (section -> keys): 64 px crops, no
#: previews, a one-epoch fit of a tiny carrier without the perceptual term.
SMALL_RUN = {"face": {"crop_size": 64, "preview": False},
             "carrier": {"fit": {"size": 64, "epochs": 1, "unet_base_channels": 8, "unet_depth": 3,
                                  "loss_perceptual_weight": 0.0}},
             # One thread per job, so Snakemake runs two of these small jobs at once on CI's 2 cores.
             "resources": {rule: {"threads": 1} for rule in ("track", "prior3d", "carrier", "composite")}}


def run_ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, timeout=120)


def kill_when(child: subprocess.Popen, done: Path, seconds: float, what: str, ready=None) -> None:
    """SIGKILL ``child`` as soon as ``done`` exists (and ``ready()`` is true, if given; ``what`` names that
    moment in a failure); fail if the child ends first or ``seconds`` pass. The child is killed and reaped
    whatever happens."""
    try:
        deadline = time.monotonic() + seconds
        while not (done.is_file() and (ready is None or ready())):
            assert child.poll() is None, f"the child ended before {what}"
            assert time.monotonic() < deadline, f"no {what} after {seconds:g} s"
            time.sleep(0.02)
    finally:
        child.kill()
        child.wait(timeout=60)


SLURM_ROUND_TRIP = "tests/test_slurm.py::test_the_slurm_profile_gives_the_local_profiles_results"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the SLURM round trip now when its test is to run (a full run): it mostly waits, so the rest of
    the suite runs meanwhile; its test collects it (tests/test_slurm.py)."""
    if session.config.option.collectonly or not any(item.nodeid == SLURM_ROUND_TRIP for item in session.items):
        return
    import tempfile

    import test_slurm

    root = Path(tempfile.mkdtemp(prefix="nice-slurm-round-trip-"))
    test_slurm.start_in_background(root)


@pytest.fixture(scope="session", autouse=True)
def scontrol_answers_at_once(tmp_path_factory: pytest.TempPathFactory):
    """Where a SLURM client is installed but no controller runs, ``scontrol show config`` waits 9-10 s
    before it fails, and Snakemake's SLURM plugin runs it whenever it is imported, i.e. on every
    ``snakemake`` start. Put a wrapper first on PATH that fails at once while ``scontrol ping`` says the
    controller is down (the outcome the real command reaches after its wait) and is the real command
    otherwise, so the SLURM test, which starts a controller, talks to the real one."""
    import shutil

    real = shutil.which("scontrol")
    if real is None:
        yield
        return
    shim = tmp_path_factory.mktemp("scontrol-shim")
    wrapper = shim / "scontrol"
    wrapper.write_text(f'#!/bin/sh\n"{real}" ping >/dev/null 2>&1 || exit 1\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{shim}{os.pathsep}{os.environ.get('PATH', '')}")
        yield


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


def _first_frames(out: Path, frames: int, seconds: float) -> Path:
    """The first ``frames`` frames of the sample, re-encoded at the same exact rate, with ``seconds`` of audio."""
    run_ffmpeg("-i", str(SAMPLE), "-frames:v", str(frames), "-c:v", "libx264", "-crf", "18", "-preset", "veryfast",
               "-c:a", "copy", "-t", str(seconds), str(out))
    return out


@pytest.fixture(scope="session")
def short_clip(clips: Path) -> Path:
    """The first 48 frames of the sample, re-encoded at the same exact rate, with its audio."""
    return _first_frames(clips / "short.mp4", 48, 2.1)


@pytest.fixture(scope="session")
def tiny_clip(clips: Path) -> Path:
    """The first 24 frames of the sample (about 1 s), with its audio: the smallest clip a workflow runs on."""
    return _first_frames(clips / "tiny.mp4", 24, 1.05)


@pytest.fixture(scope="session")
def flicker_bench(short_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 24-frame flicker benchmark of the short clip (target, clean edit, flickering proxy in ``dir``), its
    target tracked at 128 px into ``store``. Shared by the carrier and refine tests (they only add the proxy
    crops cache to the store)."""
    from nice_core.face import TrackConfig, track_video
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark

    root = tmp_path_factory.mktemp("flicker_bench")
    make_benchmark(short_clip, root / "bench", BenchConfig(frames=24), show_progress=False)
    track = track_video(root / "bench" / "target.mp4", root / "track", TrackConfig(crop_size=128, preview=False),
                        show_progress=False)
    return SimpleNamespace(root=root, dir=root / "bench", target=root / "bench" / "target.mp4",
                           proxy=root / "bench" / "proxy.mp4", store=track.store)


@pytest.fixture(scope="session")
def hand_clip(clips: Path) -> Path:
    """36 frames of the sample where a hand covers part of the face (from frame 140)."""
    out = clips / "hand.mp4"
    run_ffmpeg("-i", str(SAMPLE), "-vf", "select=between(n\\,140\\,175)", "-fps_mode", "passthrough",
               "-an", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", str(out))
    return out


@pytest.fixture(scope="session")
def no_face_clip(clips: Path) -> Path:
    out = clips / "noface.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "1", "-pix_fmt", "yuv420p", str(out))
    return out


@pytest.fixture(scope="session")
def bad_inputs(clips: Path, short_clip: Path) -> dict[str, Path]:
    """One file per kind of bad input, with the words its error message must contain."""
    text = clips / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    audio_only = clips / "audio_only.m4a"
    run_ffmpeg("-f", "lavfi", "-i", "sine=duration=1", str(audio_only))
    faststart = clips / "faststart.mp4"
    run_ffmpeg("-i", str(short_clip), "-c", "copy", "-movflags", "+faststart", str(faststart))
    truncated = clips / "truncated.mp4"
    truncated.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    # A raw H.264 stream cut before its first picture: the stream and its size are declared, no frame is.
    annexb = clips / "full.h264"
    run_ffmpeg("-i", str(SAMPLE), "-frames:v", "5", "-an", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb",
               "-f", "h264", str(annexb))
    zero = clips / "zero_frames.h264"
    zero.write_bytes(annexb.read_bytes()[:_first_picture(annexb.read_bytes())])
    empty = clips / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "missing": clips / "does_not_exist.mp4",
        "not_a_video": text,
        "no_video_stream": audio_only,
        "truncated": truncated,
        "zero_frames": zero,
        "empty": empty,
    }


def _first_picture(annexb: bytes) -> int:
    """Byte offset of the first IDR slice NAL unit (type 5) in an Annex B H.264 stream."""
    at = annexb.find(b"\x00\x00\x01")
    while at >= 0:
        if annexb[at + 3] & 0x1F == 5:
            return at
        at = annexb.find(b"\x00\x00\x01", at + 3)
    raise ValueError("no IDR slice")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def write_workflow_config(workdir: Path, videos: dict | None = None, **sections) -> dict:
    """Write ``workdir/config.yaml``: the repository's config.yaml with :data:`SMALL_RUN`, the given
    ``videos:`` and ``sections`` (a dict updates that section, anything else replaces it). Returns it."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if videos is not None:
        config["videos"] = {name: str(v) if isinstance(v, Path) else v for name, v in videos.items()}
    for name, values in [*copy.deepcopy(SMALL_RUN).items(), *copy.deepcopy(sections).items()]:
        if isinstance(values, dict) and isinstance(config.get(name), dict):
            config[name].update(values)
        else:
            config[name] = values  # a copy: the next call must not see this one's changes
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def run_snakemake(workdir: Path, *extra: str, profile: str | None = None, timeout: float | None = None,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The workflow in ``workdir`` (its config.yaml); with ``profile``, through ``profiles/<profile>``,
    else on 2 cores with --keep-going (as the default workflow profile does). ``env`` adds environment
    variables. Output is captured."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(WORKFLOW), "--directory", str(workdir)]
    cmd += ["--profile", str(PROFILES / profile)] if profile else ["--cores", "2", "--keep-going"]
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env} if env else None)


def write_deca_model(path: Path, seed: int = 0, legacy: bool = False, prefix: str = "") -> dict:
    """A file in the format of DECA's ``deca_model.tar`` (``E_flame``, ``E_detail``, ``D_detail`` state dicts)
    with random weights scaled so activations stay moderate (never DECA's licensed weights); returns it."""
    import torch

    from nice_core.prior3d.deca import DecaEncoders

    generator = torch.Generator().manual_seed(seed)
    checkpoint = {}
    for name, module in DecaEncoders().named_children():
        state = {}
        for key, tensor in module.state_dict().items():
            if key.endswith("num_batches_tracked"):
                value = torch.zeros_like(tensor)
            elif key.endswith("running_var"):
                value = 0.5 + torch.rand(tensor.shape, generator=generator)
            elif key.endswith(("running_mean", "bias")):
                value = 0.1 * torch.randn(tensor.shape, generator=generator)
            elif tensor.ndim == 1:  # batch-norm scale: small, so the residual stream stays bounded
                value = 0.2 + 0.3 * torch.rand(tensor.shape, generator=generator)
            else:
                fan_in = tensor[0].numel()
                value = torch.randn(tensor.shape, generator=generator) * (2.0 / fan_in) ** 0.5
            state[prefix + key] = value
        checkpoint[name] = state
    checkpoint["D_detail"] = {"layers.0.weight": torch.randn(4, 4, generator=generator)}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    return checkpoint
