"""The demo chain on one video, without Snakemake: what the default workflow run does for the bundled sample.

1. track the target (``face.h5``);
2. a self-swap proxy with the built-in swapper (the person pasted onto themselves, frame by frame: the
   identity does not change, the per-frame flicker does appear), unless a proxy is given;
3. the carrier fit and 4. re-compositing (:func:`~nice_core.refine.refine_video`, sharing the store);
5. metrics of the refined video with the proxy alongside (:func:`~nice_core.metrics.evaluate`);
6. the per-video report, ``report.html``.

Everything goes to one folder: ``work/`` (store, checkpoints), ``proxy.mp4``, ``refined.mp4``,
``uncertainty.mp4``, ``metrics.json``, ``report.html``. A rerun of the same command reuses what is finished
(the store, a complete proxy, the fit's checkpoints).

``quick`` lowers the carrier's step budget (:data:`QUICK_STEPS`) and skips hand detection: a run of the
sample in a few minutes on two CPU cores, with weaker numbers than the default.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from nice_core.carrier.config import FitConfig
from nice_core.errors import InputError

__all__ = ["QUICK_STEPS", "default_sample", "run_demo"]

#: The carrier's step budget in quick mode (the default FitConfig has 2400).
QUICK_STEPS = 600


def default_sample() -> Path:
    """The bundled sample clip of a source checkout (``resources/sample/``)."""
    root = Path(__file__).resolve().parents[1] / "resources" / "sample"
    clips = sorted(root.glob("*.mp4"))
    if not clips:
        raise InputError(f"no bundled sample under {root}; give a video")
    return clips[0]


def run_demo(video: str | Path, out_dir: str | Path, *, proxy: str | Path | None = None, quick: bool = False,
             fit: FitConfig | None = None, show_progress: bool | None = None) -> Path:
    """Run the demo chain on ``video`` into ``out_dir``; return the report's path."""
    from nice_core.chain import WorkFiles
    from nice_core.face import TrackConfig, track_video
    from nice_core.io import probe_video, write_json
    from nice_core.metrics import evaluate, format_table
    from nice_core.proxy.swap import swap_video
    from nice_core.refine import refine_video, store_matches
    from nice_core.report import write_video_report

    video, out = Path(video), Path(out_dir)
    probe_video(video)  # bad input fails here, in one line, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    files = WorkFiles(work)
    track = TrackConfig(preview=False, detect_hands=not quick)
    fit = fit or FitConfig()
    if quick:
        fit = replace(fit, steps=min(fit.steps, QUICK_STEPS))

    def say(line: str) -> None:
        print(f"demo: {line}", file=sys.stderr, flush=True)

    if proxy is None:
        proxy = out / "proxy.mp4"
        if not proxy.is_file():
            if not store_matches(files.store, video, track):
                say("tracking the target")
                track_video(video, work, track, show_progress=show_progress)
            say("self-swap proxy with the built-in swapper")
            swap_video(video, video, proxy, store=files.store, show_progress=show_progress)
    say("fitting the carrier and re-compositing")
    result = refine_video(video, proxy, out / "refined.mp4", fit=fit, track=track, work_dir=work,
                          uncertainty_output=out / "uncertainty.mp4", show_progress=show_progress, log=say)
    say(result.summary())
    say("metrics")
    method = "self-swap" if Path(proxy) == out / "proxy.mp4" else "given proxy"
    metrics = evaluate(video, result.output, proxy=proxy, name=video.stem, method=method,
                       uncertainty=result.uncertainty, show_progress=show_progress)
    metrics["refine_seconds"] = result.seconds
    write_json(out / "metrics.json", metrics)
    print(format_table(metrics))
    return write_video_report(metrics, out / "report.html")
