"""A job's thread budget, kept by every native pool it runs: torch (OpenMP), BLAS, OpenCV and the video codecs.

Snakemake gives each job ``OMP_NUM_THREADS`` (and the BLAS variables) equal to the threads its rule declares,
which torch obeys; OpenCV's pool, FFmpeg's decoders and x264 do not read it and take every core of the node,
so two jobs declared at 2 threads each could run 6 or more busy threads on 2 cores. ``nice-core`` reads the
budget once at start (its ``--threads``, else ``NICE_CORE_THREADS``, else ``OMP_NUM_THREADS``) and hands it
to all of them.
"""

from __future__ import annotations

import os
import sys

__all__ = ["BUDGET_VARIABLE", "apply_thread_budget", "thread_budget"]

#: Where the budget lives for the rest of the process (and the processes it starts).
BUDGET_VARIABLE = "NICE_CORE_THREADS"
#: Variables each native library reads its pool size from, set to the budget.
_POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")


def thread_budget() -> int | None:
    """The job's thread budget: ``NICE_CORE_THREADS``, else ``OMP_NUM_THREADS``; ``None`` when neither holds a
    positive integer (then every library keeps its own default)."""
    for name in (BUDGET_VARIABLE, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def apply_thread_budget(threads: int) -> None:
    """Make ``threads`` the budget of this process: the pool variables for libraries not loaded yet, and the
    pools of torch and OpenCV when they already are.

    Raises:
        ValueError: ``threads`` is not a positive integer.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    for name in (BUDGET_VARIABLE, *_POOL_VARIABLES):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)
