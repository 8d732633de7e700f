"""User-facing errors.

A :class:`NiceError` is an expected failure caused by the input (a missing file, a video with no face, ...).
The CLI prints its message as one line on stderr and exits non-zero, without a traceback. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno


class NiceError(Exception):
    """An expected, user-facing failure. ``str(err)`` is a complete one-line message."""

    exit_code = 2


class InputError(NiceError):
    """The input file is missing, unreadable, not a video, truncated or otherwise unusable."""


class NoFaceError(NiceError):
    """No face was found where one is required."""


class OutputError(NiceError):
    """An output cannot be written (for example it would overwrite an input)."""


#: How the C library (and so ffmpeg's log and HDF5's messages) words ENOSPC.
DISK_FULL = "No space left on device"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is a full disk: ENOSPC, or an error whose message carries it (h5py raises
    ``OSError``/``RuntimeError`` that quote HDF5's errno text, sometimes with no errno set)."""
    return getattr(err, "errno", None) == errno.ENOSPC or DISK_FULL in str(err)


def yaml_error_line(err: Exception) -> str:
    """A YAML parse error (four lines from PyYAML) as one line: what, and where (line and column, 1-based)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(err).split())
    context = getattr(err, "context", None)
    return f"{problem}{f' ({context})' if context else ''} at line {mark.line + 1}, column {mark.column + 1}"
