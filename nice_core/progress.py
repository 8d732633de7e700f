"""Progress bars (tqdm on stderr), sized for log files as well as terminals."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", enabled: bool = True,
             stream: TextIO | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar on ``stream`` (default stderr).

    In a log file (not a terminal) it updates every 10 s instead of continuously, so logs stay short.
    """
    if not enabled:
        yield from items
        return
    import sys

    from tqdm import tqdm

    stream = stream or sys.stderr
    interactive = stream.isatty()
    yield from tqdm(items, total=total, desc=desc, unit="frame", dynamic_ncols=interactive,
                    mininterval=0.2 if interactive else 10.0, ascii=not interactive, file=stream)
