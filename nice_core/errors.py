"""User-facing errors.

A :class:`NiceError` is an expected failure caused by the input (a missing file, a video with no face, ...).
The CLI prints its message as one line on stderr and exits non-zero, without a traceback. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class NiceError(Exception):
    """An expected, user-facing failure. ``str(err)`` is a complete one-line message."""

    exit_code = 2


class InputError(NiceError):
    """The input file is missing, unreadable, not a video, truncated or otherwise unusable."""


class NoFaceError(NiceError):
    """No face was found where one is required."""


class OutputError(NiceError):
    """An output cannot be written (for example it would overwrite an input)."""
