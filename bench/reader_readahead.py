#!/usr/bin/env python
"""Does ``VideoReader`` hold decoded frames beyond the one handed out? (diagnoses ``track_memory.py``)

Measures, for each reader, in a fresh child process (so one reader's freed memory cannot hide another's):

* ``VideoReader(path)``: the default backend (PyAV, bounded);
* ``VideoReader(path, backend="decord")``: decord, which reads ahead in a background thread;
* ``PyAV raw``: a bare ``av.open(...).decode(video=0)`` loop, for comparison.

Each child, like a slow consumer (face detection runs at ~25 frames/s, decoding at ~1000):

1. ``first + wait``: takes the first frame (``iter_frames()``) and waits ``--wait`` seconds without reading
   more; RSS growth over the RSS before opening the reader;
2. ``random + wait``: reads frame ``n // 2`` by index (``reader[i]``; the raw PyAV child skips this) and
   waits again; RSS growth over the same base;
3. ``full pass peak``: reads every frame sequentially as fast as it can; peak RSS (``VmHWM``, reset before
   the pass through ``/proc/self/clear_refs`` where allowed) over the base, and the pass's frames/s.

Growth is printed next to what every decoded frame of the video takes (frames x width x height x 3). Growth
of about that size means the decoder reads ahead without bound.

    python bench/reader_readahead.py                        # the bundled sample (472 frames)
    python bench/reader_readahead.py --loop 60              # the sample looped to 60 s (x264, like track_memory)
    python bench/reader_readahead.py --video long.mp4 --wait 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
MB = 1024 * 1024
MODES = {
    "pyav": 'VideoReader(path) (default: backend="pyav")',
    "decord": 'VideoReader(path, backend="decord")',
    "raw": "PyAV raw container.decode (comparison)",
}


def status_mb(key: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def child(mode: str, video: Path, wait: float) -> int:
    """Measure one reader in this fresh process; print one JSON line."""
    import av  # noqa: F401  (imported before the base RSS, like the decoder libraries below)

    from nice_core.io import VideoReader, probe_video

    if mode == "decord":
        import decord  # noqa: F401
    probe = probe_video(video)
    out: dict = {"mode": mode}
    base = status_mb("VmRSS")
    out["base_mb"] = base
    if mode == "raw":
        with av.open(str(video)) as container:
            decoded = container.decode(video=0)
            next(decoded).to_ndarray(format="rgb24")
            time.sleep(wait)
            out["first_wait_mb"] = status_mb("VmRSS") - base
        out["random_wait_mb"] = None
        out["peak_reset"] = reset_peak()
        start = time.perf_counter()
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            n = sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24") is not None)
    else:
        with VideoReader(video, probe, backend=mode) as reader:
            frames = reader.iter_frames()
            next(frames)
            time.sleep(wait)
            out["first_wait_mb"] = status_mb("VmRSS") - base
            frames.close()
            reader[len(reader) // 2]
            time.sleep(wait)
            out["random_wait_mb"] = status_mb("VmRSS") - base
        out["peak_reset"] = reset_peak()
        start = time.perf_counter()
        with VideoReader(video, probe, backend=mode) as reader:
            n = sum(1 for _ in reader.iter_frames())
    out["pass_s"] = time.perf_counter() - start
    out["pass_frames"] = n
    out["peak_mb"] = status_mb("VmHWM") - base
    print(json.dumps(out), flush=True)
    return 0


def loop_video(src: Path, dst: Path, seconds: float) -> None:
    from nice_core.io import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-stream_loop", "-1", "-i", str(src), "-t", f"{seconds:g}",
                    "-map", "0:v:0", "-c:v", "libx264", "-crf", "23", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-an", str(dst)], check=True)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 5 and sys.argv[1] == "--child":
        return child(sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--loop", type=float, help="first loop the video to this many seconds (x264 crf 23)")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds to wait after the first frame")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES), help="readers to measure")
    args = parser.parse_args(argv)

    from nice_core.io import probe_video

    results = []
    with tempfile.TemporaryDirectory(prefix="nice_bench_") as tmp:
        video = args.video
        if args.loop:
            video = Path(tmp) / f"loop_{args.loop:g}s.mp4"
            loop_video(args.video, video, args.loop)
        probe = probe_video(video)
        all_frames = probe.n_frames * probe.width * probe.height * 3 / MB
        print(f"video: {args.video}{f' looped to {args.loop:g} s' if args.loop else ''}: {probe.n_frames} frames "
              f"{probe.width}x{probe.height}, all frames decoded = {all_frames:.0f} MB; wait {args.wait:g} s")
        for mode in args.modes:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode, str(video),
                                   str(args.wait)], capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"child for {mode} failed with status {proc.returncode}")
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(info)

    def pct(mb: float) -> str:
        return f"{100 * mb / all_frames:.0f} %"

    print()
    print(f"{'reader':<46s} {'first+wait MB':>13} {'random+wait MB':>15} {'full pass peak MB':>18} {'pass fps':>9}")
    for r in results:
        rnd = f"{r['random_wait_mb']:+.0f}" if r["random_wait_mb"] is not None else "-"
        peak = f"{r['peak_mb']:+.0f}" + ("" if r["peak_reset"] else " (*)")
        print(f"{MODES[r['mode']]:<46s} {r['first_wait_mb']:>+13.0f} {rnd:>15} {peak:>18} "
              f"{r['pass_frames'] / r['pass_s']:>9.0f}")
    print()
    for r in results:
        rnd = (f", {pct(r['random_wait_mb'])} after the random read" if r["random_wait_mb"] is not None else "")
        print(f"{MODES[r['mode']]}: growth = {pct(r['first_wait_mb'])} of all frames decoded after the first "
              f"frame{rnd}, {pct(r['peak_mb'])} at the peak of a full pass")
    if not all(r["peak_reset"] for r in results):
        print("(*) VmHWM could not be reset: that peak includes the earlier steps")
    print("json:", json.dumps({"video": str(args.video), "loop_s": args.loop, "frames": probe.n_frames,
                               "all_frames_mb": all_frames, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
