"""Output paths checked before any work: never an input, never twice, always writable.

A command names its inputs and its outputs (files and folders). :func:`check_paths` refuses, with one line
naming both paths, an output that is one of the inputs (the same file, through a symlink, a hard link or a
``../`` spelling), two outputs that are the same file, an output file that is an existing folder (or a
folder that is an existing file), and an output whose folder cannot be written (missing permission, a
read-only file system, a file where a folder should be). It runs before anything is read or computed, so a
long job never fails at its last step for a path the user could fix at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from nice_core.errors import OutputError

__all__ = ["check_paths", "same_file"]

Paths = Mapping[str, "str | Path | list[str | Path] | None"]


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (resolved spelling, or the same inode when both exist)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _flatten(paths: Paths) -> list[tuple[str, Path]]:
    out = []
    for role, value in paths.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item not in (None, ""):
                out.append((role, Path(item)))
    return out


def _writable_parent(path: Path, role: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process can create a file in (tried:
    permission bits, read-only mounts and pseudo file systems all say no in their own way)."""
    import tempfile

    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {role} {path}: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".nice-core-write-test.", dir=parent)
    except OSError as err:
        raise OutputError(f"cannot write {role} {path}: {parent}: {err.strerror.lower()}") from None
    os.close(fd)
    os.unlink(probe)


def check_paths(inputs: Paths, files: Paths, folders: Paths = {}) -> None:  # noqa: B006 (read-only default)
    """Refuse unusable outputs before any work (see the module notes).

    Args:
        inputs: role (e.g. ``"--target"``) -> input path(s); ``None`` entries are skipped.
        files: role -> output file path.
        folders: role -> output folder path.

    Raises:
        OutputError: one line naming the output and what is wrong with it.
    """
    sources = _flatten(inputs)
    outputs = [(role, path, False) for role, path in _flatten(files)]
    outputs += [(role, path, True) for role, path in _flatten(folders)]
    for role, path, folder in outputs:
        for source_role, source in sources:
            if same_file(path, source):
                raise OutputError(f"refusing to write {role} {path}: it is the input {source_role} ({source})")
        if folder and path.exists() and not path.is_dir():
            raise OutputError(f"cannot write {role} {path}: it exists and is a file, not a folder")
        if not folder and path.is_dir():
            raise OutputError(f"cannot write {role} {path}: it is a folder")
        target = path if not folder or not path.exists() else path / "x"
        _writable_parent(target, role)
    for i, (role, path, _) in enumerate(outputs):
        for other_role, other, _ in outputs[i + 1:]:
            if same_file(path, other):
                raise OutputError(f"{role} and {other_role} name the same path ({path}); give each its own")
