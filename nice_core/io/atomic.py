"""Atomic outputs: write to a temporary name beside the target, rename on success, delete on failure.

Also the one place that refuses to overwrite an input.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from nice_core.errors import OutputError


def refuse_input_overwrite(output: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Raise :class:`OutputError` if ``output`` names the same file as any of ``inputs``."""
    out = Path(output).resolve()
    for candidate in inputs:
        if candidate is None:
            continue
        src = Path(candidate)
        same = src.resolve() == out or (out.exists() and src.exists() and os.path.samefile(src, out))
        if same:
            raise OutputError(f"refusing to overwrite an input file: {output}")


def temporary_sibling(path: str | Path, suffix: str | None = None) -> Path:
    """A fresh, unused path in the same directory as ``path`` (so a rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=(suffix or path.suffix) + ".partial",
                                dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    return Path(name)


@contextlib.contextmanager
def atomic_output(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes ``path`` only if the block finishes without error."""
    refuse_input_overwrite(path, inputs)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, data: object) -> None:
    """Write JSON atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
