"""Progress reporting: a tqdm bar on a terminal, plain timestamped lines in a log file."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

#: Seconds between progress lines when stderr is a log file, not a terminal.
LOG_INTERVAL_S = 10.0


def progress(items: Iterable[T], total: int | None = None, desc: str = "", enabled: bool = True,
             stream: TextIO | None = None) -> Iterator[T]:
    """Yield ``items`` while reporting progress on ``stream`` (default stderr).

    On a terminal this is a tqdm bar. In a log file (a Snakemake or SLURM job) carriage-return bars are
    unreadable, so it writes one line every :data:`LOG_INTERVAL_S` seconds and a final line instead, e.g.
    ``detect: 120/472 frames (25%), 54.1 frames/s, 7 s left``.
    """
    if not enabled:
        yield from items
        return
    stream = stream or sys.stderr
    if stream.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, desc=desc, unit="frame", dynamic_ncols=True, file=stream)
        return
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= LOG_INTERVAL_S:
            stream.write(_line(desc, done, total, now - start) + "\n")
            stream.flush()
            last = now
    elapsed = time.monotonic() - start
    stream.write(f"{desc}: {done} frames done in {elapsed:.1f} s ({done / max(elapsed, 1e-9):.1f} frames/s)\n")
    stream.flush()


def _line(desc: str, done: int, total: int | None, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    if total:
        left = (total - done) / rate if rate > 0 else float("nan")
        return f"{desc}: {done}/{total} frames ({100 * done / total:.0f}%), {rate:.1f} frames/s, {left:.0f} s left"
    return f"{desc}: {done} frames, {rate:.1f} frames/s"
