#!/usr/bin/env python
"""Peak memory of the face tracking/alignment stage on long videos (target: <= 1.5 GB), and that it does
not grow with the clip length.

For each ``--seconds`` length the video is looped to that length with ffmpeg (``-stream_loop -1 -t S``,
re-encoded ``-c:v libx264 -crf 23 -preset veryfast``; audio dropped unless ``--audio``), then
``track_video`` (default config: preview on, hands on) runs on it in a fresh child process. Reported:

* peak RSS of the tracking process: ``getrusage(RUSAGE_SELF).ru_maxrss`` taken in the child just before
  it exits (the same number ``getrusage(RUSAGE_CHILDREN)`` gives the parent for that child; it is taken in
  the child so that every length is measured on its own and the ffmpeg that builds the input is not counted);
* with psutil (sampled every ``--interval`` s): the peak RSS of the child's own children (the ffmpeg that
  encodes ``preview.mp4``) and the peak of the summed RSS of the whole tree (Python + ffmpeg). Not
  ``RUSAGE_CHILDREN`` for ffmpeg: on Linux a forked child inherits the parent's RSS high-water mark up to
  its ``exec``, so that number is the Python process's RSS at fork time, not ffmpeg's.

    python bench/track_memory.py                        # 20 s and 200 s of the bundled sample
    python bench/track_memory.py --seconds 200
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "pexels-wolfgang-langer-3063838.mp4"
TARGET_MB = 1536.0  # 1.5 GB (GiB-style: 1.5 * 1024 MB)
MB = 1024 * 1024


def maxrss_mb(who: int) -> float:
    """ru_maxrss in MB (MiB); Linux reports kilobytes, macOS bytes."""
    value = resource.getrusage(who).ru_maxrss
    return value / MB if sys.platform == "darwin" else value / 1024


def loop_video(src: Path, dst: Path, seconds: float, audio: bool) -> None:
    from nice_core.io import ffmpeg_exe

    cmd = [ffmpeg_exe(), "-y", "-v", "error", "-stream_loop", "-1", "-i", str(src), "-t", f"{seconds:g}",
           "-map", "0:v:0", "-c:v", "libx264", "-crf", "23", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    cmd += ["-map", "0:a:0?", "-c:a", "aac"] if audio else ["-an"]
    subprocess.run([*cmd, str(dst)], check=True)


def child(video: Path, out_dir: Path) -> int:
    """Run the stage in this (fresh) process and print one JSON line with its peak RSS."""
    from nice_core.face.track import TrackConfig, track_video

    start = time.perf_counter()
    result = track_video(video, out_dir, TrackConfig(), show_progress=False)
    wall = time.perf_counter() - start
    store_mb = result.store.stat().st_size / MB
    print(json.dumps({"n_frames": result.n_frames, "frames_with_face": result.frames_with_face,
                      "wall_s": wall, "self_maxrss_mb": maxrss_mb(resource.RUSAGE_SELF), "store_mb": store_mb}),
          flush=True)
    return 0


def rss_mb(proc) -> tuple[float, float]:
    """(RSS of ``proc``, summed RSS of its descendants) in MB."""
    import psutil

    def one(p) -> int:
        try:
            return p.memory_info().rss
        except psutil.Error:
            return 0

    try:
        kids = proc.children(recursive=True)
    except psutil.Error:
        return 0.0, 0.0
    return one(proc) / MB, sum(one(k) for k in kids) / MB


def frame_bytes(video: Path) -> int:
    """Bytes of one decoded RGB frame."""
    from nice_core.io import probe_video

    probe = probe_video(video)
    return probe.width * probe.height * 3


def run_child(video: Path, out_dir: Path, interval: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(video), str(out_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak_tree = peak_kids = peak_self = None
    try:
        import psutil

        handle = psutil.Process(proc.pid)
        peak_tree = peak_kids = peak_self = 0.0
        while proc.poll() is None:
            own, kids = rss_mb(handle)
            peak_self, peak_kids, peak_tree = max(peak_self, own), max(peak_kids, kids), max(peak_tree, own + kids)
            time.sleep(interval)
    except ImportError:
        pass
    stdout, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"tracking child failed with status {proc.returncode}")
    info = json.loads(stdout.strip().splitlines()[-1])
    info["tree_peak_mb"] = peak_tree
    info["children_peak_mb"] = peak_kids
    info["self_sampled_peak_mb"] = peak_self
    return info


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--child":
        return child(Path(sys.argv[2]), Path(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="input video (default: the bundled sample)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[20.0, 200.0],
                        help="lengths to loop the video to and track (default: 20 200)")
    parser.add_argument("--audio", action="store_true", help="keep the audio (re-encoded to AAC) in the loop")
    parser.add_argument("--interval", type=float, default=0.1, help="psutil sampling interval, seconds")
    parser.add_argument("--keep", type=Path, help="keep the looped videos in this folder (default: temporary)")
    args = parser.parse_args(argv)

    print(f"video: {args.video}; target peak RSS <= {TARGET_MB:.0f} MB")
    results = []
    with tempfile.TemporaryDirectory(prefix="nice_bench_") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for seconds in args.seconds:
            looped = folder / f"loop_{seconds:g}s.mp4"
            start = time.perf_counter()
            if not looped.exists():
                loop_video(args.video, looped, seconds, args.audio)
            built = time.perf_counter() - start
            out_dir = Path(tmp) / f"out_{seconds:g}s"
            info = run_child(looped, out_dir, args.interval)
            info["seconds"] = seconds
            info["all_frames_mb"] = info["n_frames"] * frame_bytes(looped) / MB
            results.append(info)
            sampled = info["tree_peak_mb"] is not None
            tree = f"{info['tree_peak_mb']:.0f} MB" if sampled else "n/a (no psutil)"
            kids = f"{info['children_peak_mb']:.0f} MB" if sampled else "n/a"
            print(f"{seconds:g} s looped ({looped.stat().st_size / MB:.1f} MB, built in {built:.1f} s): "
                  f"{info['n_frames']} frames, tracked in {info['wall_s']:.1f} s "
                  f"({info['n_frames'] / info['wall_s']:.1f} frames/s); "
                  f"peak RSS tracking process {info['self_maxrss_mb']:.0f} MB, "
                  f"its ffmpeg (sampled) {kids}, whole tree (sampled) {tree}; "
                  f"store {info['store_mb']:.0f} MB", flush=True)
            for path in out_dir.glob("*"):
                path.unlink()

    print()
    print(f"{'seconds':>8} {'frames':>7} {'peak RSS MB':>12} {'ffmpeg MB':>10} {'tree MB':>8} {'fps':>6} "
          f"{'all frames decoded MB':>22}")
    for r in results:
        tree = f"{r['tree_peak_mb']:.0f}" if r["tree_peak_mb"] is not None else "n/a"
        kids = f"{r['children_peak_mb']:.0f}" if r["children_peak_mb"] is not None else "n/a"
        print(f"{r['seconds']:>8g} {r['n_frames']:>7d} {r['self_maxrss_mb']:>12.0f} {kids:>10} "
              f"{tree:>8} {r['n_frames'] / r['wall_s']:>6.1f} {r['all_frames_mb']:>22.0f}")
    worst = max(r["self_maxrss_mb"] for r in results)
    worst_tree = max((r["tree_peak_mb"] or 0) for r in results)
    print()
    print(f"max peak RSS of the tracking process: {worst:.0f} MB "
          f"({'PASS' if worst <= TARGET_MB else 'FAIL'} <= {TARGET_MB:.0f} MB); "
          f"whole tree incl. preview ffmpeg: {worst_tree:.0f} MB")
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"growth from {a['seconds']:g} s to {b['seconds']:g} s: "
              f"{b['self_maxrss_mb'] - a['self_maxrss_mb']:+.0f} MB for {b['n_frames'] - a['n_frames']:+d} frames")
    print("(all frames decoded MB = frames x width x height x 3 bytes: what holding every decoded frame would take)")
    print("json:", json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
