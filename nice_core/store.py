"""The per-video HDF5 store: everything later stages need about one video's face, in one file.

Later stages read only this file; they never re-detect. Layout (N frames, S = crop size):

==================  ==================  =====================================================
dataset             shape, dtype        meaning
==================  ==================  =====================================================
``detected``        (N,) bool           the subject was detected in this frame
``has_face``        (N,) bool           detected, or inside a short gap that was filled
``landmarks``       (N, 478, 3) f4      face-mesh landmarks in frame pixels (NaN: no face)
``pose``            (N, 3) f4           yaw, pitch, roll in degrees
``align_raw``       (N, 4) f8           per-frame crop params ``cx, cy, log half side, angle``
``align``           (N, 4) f8           the same, temporally smoothed (used for the crops)
``transforms``      (N, 2, 3) f8        frame -> crop affine matrix (NaN: no face)
``hands``           (N, 2, 21, 2) f4    hand landmarks in frame pixels (NaN: none)
``crops``           (N, S, S, 3) u1     aligned RGB crops, one chunk per frame
``masks``           (N, S, S) u1        soft face mask, 255 = face
``shot``            (N,) i4             the frame's shot (0, then +1 at every hard cut)
==================  ==================  =====================================================

Attributes: ``schema_version``, ``nice_core_version``, ``video``, ``video_sha256``, ``probe`` (JSON),
``config`` (JSON), ``crop_size``, ``cuts`` (JSON: the frames where a shot starts). Stores written before
shot cuts were found have neither ``shot`` nor ``cuts`` (:meth:`FaceStore.shots` reads them as one shot).
Stages that come later add their own groups (e.g. ``prior3d/``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

import h5py
import numpy as np

from nice_core.errors import DISK_FULL, InputError, is_disk_full

SCHEMA_VERSION = 1
#: Face-mesh and hand landmark counts (mediapipe's topologies, see :mod:`nice_core.face.landmarks`).
N_LANDMARKS = 478
N_HAND_LANDMARKS = 21
MAX_HANDS = 2
#: Frames per chunk for the small per-frame arrays.
ROW_CHUNK = 256


class FaceStore:
    """A per-video HDF5 store. Open with :meth:`create` or :meth:`open`; use as a context manager."""

    def __init__(self, handle: h5py.File, new: bool = False) -> None:
        self.h5 = handle
        self.path = Path(handle.filename)
        self._new = new
        # One h5py object per dataset: each has its own chunk cache, and a temporary one would flush it when
        # it is freed, where HDF5's write errors (a full disk) are printed and ignored instead of raised.
        self._datasets: dict[str, h5py.Dataset] = {}

    @classmethod
    def create(cls, path: str | Path, n_frames: int, crop_size: int, attrs: dict[str, object],
               compression: str | None = "lzf") -> FaceStore:
        """Create a new store for ``n_frames`` frames with ``crop_size`` crops (overwrites ``path``)."""
        h5 = h5py.File(path, "w")
        n, s = int(n_frames), int(crop_size)
        rows = min(ROW_CHUNK, n)

        def make(name: str, shape: tuple[int, ...], dtype: object, fill: object, chunks: tuple[int, ...]):
            h5.create_dataset(name, shape=shape, dtype=dtype, fillvalue=fill, chunks=chunks,
                              compression=compression)

        make("detected", (n,), bool, False, (rows,))
        make("has_face", (n,), bool, False, (rows,))
        make("landmarks", (n, N_LANDMARKS, 3), "f4", np.nan, (min(64, n), N_LANDMARKS, 3))
        make("pose", (n, 3), "f4", np.nan, (rows, 3))
        make("align_raw", (n, 4), "f8", np.nan, (rows, 4))
        make("align", (n, 4), "f8", np.nan, (rows, 4))
        make("transforms", (n, 2, 3), "f8", np.nan, (rows, 2, 3))
        make("hands", (n, MAX_HANDS, N_HAND_LANDMARKS, 2), "f4", np.nan, (rows, MAX_HANDS, N_HAND_LANDMARKS, 2))
        make("crops", (n, s, s, 3), "u1", 0, (1, s, s, 3))
        make("masks", (n, s, s), "u1", 0, (1, s, s))
        make("shot", (n,), "i4", 0, (rows,))
        h5.attrs["schema_version"] = SCHEMA_VERSION
        h5.attrs["crop_size"] = s
        for key, value in attrs.items():
            h5.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
        return cls(h5, new=True)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> FaceStore:
        """Open an existing store, checking that it is one."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"face store not found: {path} (run `nice-core track` first)")
        try:
            h5 = h5py.File(path, mode)
        except OSError:
            raise InputError(f"not a readable HDF5 face store: {path}") from None
        version = h5.attrs.get("schema_version")
        if version != SCHEMA_VERSION or "crops" not in h5:
            h5.close()
            raise InputError(f"{path} is not a nice-core face store of schema {SCHEMA_VERSION}")
        return cls(h5)

    # -- convenient access ------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return int(self.h5["has_face"].shape[0])

    @property
    def crop_size(self) -> int:
        return int(self.h5.attrs["crop_size"])

    def json_attr(self, key: str) -> object:
        return json.loads(self.h5.attrs[key])

    def __getitem__(self, name: str) -> h5py.Dataset:
        if name not in self._datasets:
            self._datasets[name] = self.h5[name]
        return self._datasets[name]

    def shots(self) -> np.ndarray:
        """``(N,)`` int32: each frame's shot number (all 0 in a store without shot cuts)."""
        if "shot" not in self.h5:
            return np.zeros(self.n_frames, np.int32)
        return self["shot"][:]

    def crop(self, index: int) -> np.ndarray:
        """``(S, S, 3)`` ``uint8`` RGB crop of frame ``index`` (zeros where there is no face)."""
        return self.h5["crops"][index]

    def mask(self, index: int) -> np.ndarray:
        """``(S, S)`` ``float32`` mask in ``[0, 1]`` of frame ``index``."""
        return self.h5["masks"][index].astype(np.float32) / 255.0

    def close(self) -> None:
        """Flush and close. A new store's flush comes first, where a write error is raised (a full disk:
        ``OSError`` ENOSPC) after the store is discarded, instead of crashing inside HDF5's close."""
        if self._new and self.h5.id.valid:
            try:
                self.h5.flush()
            except (OSError, RuntimeError) as err:
                self.discard()
                if is_disk_full(err):
                    raise OSError(errno.ENOSPC, DISK_FULL, str(self.path)) from None
                raise
        self._datasets.clear()
        self.h5.close()

    def discard(self) -> None:
        """Close a store made by :meth:`create` that is being thrown away (its writer failed).

        The file is emptied first: after a full disk, HDF5's closing flush would fail again (and can crash
        the process); with the space back it ends quietly, and the caller removes the file.
        """
        with contextlib.suppress(OSError):
            os.truncate(self.path, 0)
        self._new = False
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> FaceStore:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is not None and self._new:
            self.discard()
        else:
            self.close()
