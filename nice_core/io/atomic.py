"""Atomic outputs: write to a temporary name beside the target, rename on success, delete on failure.

Also the one place that refuses to overwrite an input.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
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


def _owner_tag() -> str:
    """``host.pid``: who writes a partial file (hosts differ on a cluster's shared disk)."""
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}.{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Delete the partial files (and their logs) of earlier writers of ``path`` that died on this host.

    A writer killed by SIGKILL, or a machine that lost power, leaves ``.<stem>.<host>.<pid>-<random>
    <suffix>.partial`` (and a video writer its ``.log``) next to the output; the next writer of the same
    output removes those whose process is gone. Partials of live processes, and of other hosts (a shared
    disk), are left alone. Returns what was removed.
    """
    path = Path(path)
    host = _owner_tag().rsplit(".", 1)[0]
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f".{glob.escape(path.stem)}.{glob.escape(host)}.*"):
        if ".partial" not in candidate.name and not candidate.name.endswith(".log"):
            continue
        pid_part = candidate.name[len(f".{path.stem}.{host}."):].split("-", 1)[0]
        if pid_part.isdigit() and not _alive(int(pid_part)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def temporary_sibling(path: str | Path, suffix: str | None = None, *, keep_suffix: bool = False) -> Path:
    """A fresh, unused path in the same directory as ``path`` (so a rename is atomic), named after its
    writer (:func:`remove_stale_partials` runs first). ``keep_suffix``: end the name with the real suffix
    (``.partial.mp4``), for tools that choose their format by it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    ending = (suffix or path.suffix)
    ending = f".partial{ending}" if keep_suffix else f"{ending}.partial"
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.{_owner_tag()}-", suffix=ending, dir=path.parent)
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
