"""A job's thread budget, kept by every native pool it runs: torch (OpenMP), BLAS, OpenCV and the video codecs.

Snakemake gives each job ``OMP_NUM_THREADS`` (and the BLAS variables) equal to the threads its rule declares,
which torch obeys; OpenCV's pool, FFmpeg's decoders and x264 do not read it and take every core of the node,
so two jobs declared at 2 threads each could run 6 or more busy threads on 2 cores. ``nice-core`` reads the
budget once at start (its ``--threads``, else ``NICE_CORE_THREADS``, else ``OMP_NUM_THREADS``) and hands it
to all of them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["BUDGET_VARIABLE", "apply_thread_budget", "deterministic_torch", "thread_budget", "thread_budget_applied"]

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
    for _, set_threads in _loaded_pools().values():
        set_threads(threads)


@contextlib.contextmanager
def thread_budget_applied(threads: int | None) -> Iterator[None]:
    """:func:`apply_thread_budget` for the duration of the block (``None``: nothing changes), then the
    environment and the pools as they were: a command run in-process (tests, notebooks) leaves its caller's
    settings, and the processes the caller starts afterwards, alone."""
    if threads is None:
        yield
        return
    saved = {name: os.environ.get(name) for name in (BUDGET_VARIABLE, *_POOL_VARIABLES)}
    pools = {name: (get_threads(), set_threads) for name, (get_threads, set_threads) in _loaded_pools().items()}
    apply_thread_budget(threads)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for before, set_threads in pools.values():
            set_threads(before)


@contextlib.contextmanager
def deterministic_torch(threads: int | None, device_type: str = "cpu") -> Iterator[None]:
    """torch's deterministic algorithms (warnings only off the CPU, where some ops have no deterministic
    kernel) and ``threads`` CPU threads (``None``: unchanged) for the block; both restored afterwards. The
    thread count is part of reproducibility: it can change float summation order. torch is imported here,
    so importing this module stays light."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if device_type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=device_type != "cpu")
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


#: The pools set through their library's own calls once it is loaded: module -> (getter, setter) names.
_POOL_CALLS = {"torch": ("get_num_threads", "set_num_threads"), "cv2": ("getNumThreads", "setNumThreads")}


def _loaded_pools() -> dict:
    """The getter and setter of each pool whose library is already imported."""
    return {name: (getattr(sys.modules[name], get), getattr(sys.modules[name], put))
            for name, (get, put) in _POOL_CALLS.items() if name in sys.modules}
