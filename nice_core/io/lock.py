"""One writer per output: an advisory lock beside every output file or folder of a command.

Two copies of a workflow with the same ``results:``, or an orphaned job still running after Snakemake was
killed, would otherwise write one ``face.h5`` or one checkpoint folder at once. :func:`output_lock` takes
an exclusive ``flock`` on ``.<name>.lock`` next to the output for the life of the command; a second writer
fails at once with one line naming the holder (host and pid). The kernel drops the lock when its holder
dies, even by SIGKILL, so a rerun after a crash is never blocked by a stale file; the lock file is removed
when the command ends.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from nice_core.errors import OutputError

__all__ = ["lock_path", "output_lock"]


def lock_path(output: str | Path) -> Path:
    """Where the lock of ``output`` lives: ``.<name>.lock`` in the same folder."""
    output = Path(output)
    return output.parent / f".{output.name}.lock"


@contextlib.contextmanager
def output_lock(output: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of ``output`` (its folder is created if needed).

    Raises:
        OutputError: another process holds it.
    """
    import fcntl

    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutputError(f"{output} is being written by {holder}; wait for it to finish or stop it, "
                              "then run again") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we opened it: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)
