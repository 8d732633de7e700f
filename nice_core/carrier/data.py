"""The carrier's training data: per frame with a face, the target crop, the proxy crop and the face mask.

The carrier learns ``Xt -> Xref`` in crop space (NICe Sec. 3.2.1): ``Xt`` is the store's aligned crop of
the target frame, ``Xref`` is the proxy frame showing the same target frame, warped with the *same*
frame -> crop transform (``cv2.warpAffine``, ``INTER_CUBIC``, ``BORDER_REPLICATE``, exactly as the
tracker made ``Xt``), so the two crops differ only by the swap.

**Memory.** Nothing holds the clip. :func:`prepare_proxy_crops` streams the proxy once (one decoded frame
in memory at a time) and caches its crops in a file of their own, ``proxy_crops.h5`` (by default beside the
store; the workflow's per-pair ``work/<video>/proxy_crops.h5``), in the group ``carrier/``. The tracking
store is only read: several pairs of one target can fit at once from one store.

========================  ================  ====================================================
dataset                   shape, dtype      meaning
========================  ================  ====================================================
``carrier/proxy_crops``   (N, S, S, 3) u1   proxy crop of target frame ``i`` (zeros where invalid)
``carrier/proxy_valid``   (N,) bool         frame has a face and a proxy frame (training frames)
``carrier/proxy_shift``   (N, 2) f4         the shift undone by registration (px; 0: not registered)
``carrier/swap_region``   (S, S) f4         where the proxy consistently differs from the target
                                            (:mod:`nice_core.carrier.region`), for the paste mask
========================  ================  ====================================================

Group attributes: ``proxy`` (path), ``proxy_sha256``, ``store_sha256``, ``frame_offset``, ``rescale``,
``crop_size``, ``registered``, ``complete``: a cache of another proxy, store or setting is redone. The crops
are stored uncompressed, one chunk per frame, with every chunk allocated when the dataset is created
(``H5D_ALLOC_TIME_EARLY``: a disk that fills does so before any crop is written); the file is written
beside its final name and moved there when complete, so a crash leaves no cache. Cost on disk: ``3 S^2``
bytes per frame (197 KB at 256 px; 47 MB for a 10 s clip at 24 fps).

:class:`CarrierDataset` then reads frames by index, a batch at a time, optionally resized to a smaller
training ``size`` (``cv2.INTER_AREA``); tensors are ``(B, 3, s, s)`` float in ``[0, 1]`` (masks
``(B, 1, s, s)``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import Tensor

from nice_core.carrier.region import RegionAccumulator, store_paste_mask
from nice_core.carrier.register import register_proxy_crop
from nice_core.errors import InputError, OutputError, is_disk_full
from nice_core.face.alignment import warp_crop
from nice_core.io.reader import VideoReader
from nice_core.progress import progress
from nice_core.store import FaceStore

__all__ = [
    "CARRIER_GROUP",
    "PROXY_CROPS_FILE",
    "SWAP_REGION",
    "CarrierDataset",
    "default_proxy_crops",
    "prepare_proxy_crops",
    "proxy_crops_ready",
    "to_tensor",
]

CARRIER_GROUP = "carrier"
PROXY_CROPS = f"{CARRIER_GROUP}/proxy_crops"
PROXY_VALID = f"{CARRIER_GROUP}/proxy_valid"
SWAP_REGION = f"{CARRIER_GROUP}/swap_region"
#: The cache's default name, beside the store.
PROXY_CROPS_FILE = "proxy_crops.h5"


def default_proxy_crops(store_path: str | Path) -> Path:
    """Where the proxy-crop cache of ``store_path`` goes when no path is given: beside it."""
    return Path(store_path).with_name(PROXY_CROPS_FILE)


def _cache_group(path: Path):
    """The complete cache's group in ``path`` opened for reading, or ``None`` (missing, unreadable,
    incomplete)."""
    if not path.is_file():
        return None
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        return None
    if CARRIER_GROUP not in h5 or not h5[CARRIER_GROUP].attrs.get("complete", False):
        h5.close()
        return None
    return h5


def _proxy_source(store: FaceStore, proxy: Path, check) -> tuple[int, bool]:
    """Validate the proxy against the store; return ``(frame_offset, rescale)``."""
    n = store.n_frames
    if check is not None:
        if check.target.n_frames != n:
            raise InputError(f"proxy check is for a target of {check.target.n_frames} frames, the store has {n}")
        if Path(check.proxy.path).resolve() != proxy.resolve():
            raise InputError(f"proxy check is for {check.proxy.path}, not {proxy}")
        return check.frame_offset, check.rescale
    from nice_core.io.probe import probe_video

    probe = probe_video(proxy)
    target = json.loads(store.h5.attrs["probe"]) if "probe" in store.h5.attrs else {}
    size = (target.get("width"), target.get("height"))
    if probe.n_frames != n or (None not in size and (probe.width, probe.height) != size):
        raise InputError(f"proxy {proxy} has {probe.n_frames} frames of {probe.width}x{probe.height}, the target "
                         f"{n} of {size[0]}x{size[1]}; run the proxy check (check_proxy) and pass its result")
    return 0, False


def proxy_crops_ready(store_path: str | Path, cache: str | Path | None = None) -> bool:
    """Whether a complete proxy-crop cache of the store exists (at ``cache``, default beside the store)."""
    h5 = _cache_group(Path(cache) if cache is not None else default_proxy_crops(store_path))
    if h5 is None:
        return False
    h5.close()
    return True


def _cache_matches(cache: Path, wanted: dict) -> bool:
    """Whether ``cache`` is a complete proxy-crop cache made with exactly the ``wanted`` attributes."""
    h5 = _cache_group(cache)
    if h5 is None:
        return False
    with h5:
        attrs = h5[CARRIER_GROUP].attrs
        return all(key in attrs and attrs[key] == value for key, value in wanted.items())


def _allocate_crops(group: h5py.Group, n: int, size: int) -> h5py.Dataset:
    """The ``(n, size, size, 3)`` ``uint8`` crop dataset, one chunk per frame, allocated (and filled) up
    front: a disk that fills does so here, before any crop is written, never half-way through the tracking
    data."""
    space = h5py.h5s.create_simple((n, size, size, 3))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((1, size, size, 3))
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    h5py.h5d.create(group.id, b"proxy_crops", h5py.h5t.STD_U8LE, space, dcpl=dcpl)
    return group["proxy_crops"]


def prepare_proxy_crops(store_path: str | Path, proxy: str | Path, check=None, *, cache: str | Path | None = None,
                        force: bool = False, show_progress: bool = False, register: bool = True) -> int:
    """Cache the proxy's crops in their own file (``carrier/`` in ``cache``), streaming the proxy once.

    Args:
        store_path: the per-video store (``face.h5``); only read.
        proxy: the proxy video.
        check: a :class:`~nice_core.proxy.check.ProxyCheck` of this proxy against the store's video (frame
            offset and rescale are applied); ``None``: the proxy must have the target's frame count and size.
        cache: the cache file to write (default: :func:`default_proxy_crops`, beside the store).
        force: redo the cache even if a complete one of the same proxy, store and settings exists.
        show_progress: show a progress line.
        register: shift each proxy crop's face onto the target crop's
            (:func:`~nice_core.carrier.register.register_proxy_crop`); the shifts go to
            ``carrier/proxy_shift``.

    Returns:
        The number of training frames (frames with a face and a proxy frame).

    Raises:
        InputError: the proxy does not fit the store, or no frame has both a face and a proxy frame.
        OutputError: the disk filled (nothing is left behind; the store is never touched).
    """
    from nice_core.io.atomic import atomic_output, refuse_input_overwrite
    from nice_core.io.digest import file_sha256

    store_path, proxy = Path(store_path), Path(proxy)
    cache = Path(cache) if cache is not None else default_proxy_crops(store_path)
    refuse_input_overwrite(cache, [store_path, proxy])  # before the long hashes, not only when writing
    with FaceStore.open(store_path) as store:
        offset, rescale = _proxy_source(store, proxy, check)
        wanted = {"proxy_sha256": file_sha256(proxy), "store_sha256": file_sha256(store_path),
                  "frame_offset": int(offset), "crop_size": int(store.crop_size), "registered": bool(register)}
        if not force and _cache_matches(cache, wanted):
            with h5py.File(cache, "r") as h5:
                return int(h5[PROXY_VALID][:].sum())
        try:
            with atomic_output(cache) as tmp, h5py.File(tmp, "w") as h5:
                count = _write_cache(h5, store, proxy, check, wanted | {"proxy": str(proxy), "rescale": rescale},
                                     register, show_progress)
                if count == 0:
                    raise InputError(f"no frame of {store_path} has both a face and a proxy frame ({proxy})")
        except OSError as err:
            if is_disk_full(err):
                raise OutputError(f"no space left on device writing the proxy-crop cache {cache}") from None
            raise
    return count


def _write_cache(h5: h5py.File, store: FaceStore, proxy: Path, check, attrs: dict, register: bool,
                 show_progress: bool) -> int:
    """Stream the proxy into a new cache file; returns the number of training frames."""
    from nice_core.proxy.check import aligned_proxy_frames

    n, size = store.n_frames, store.crop_size
    has_face = store["has_face"][:]
    transforms = store["transforms"][:]
    covered = np.zeros(n, bool)
    group = h5.create_group(CARRIER_GROUP)
    group.attrs.update(attrs, complete=False)
    crops = _allocate_crops(group, n, size)
    valid = group.create_dataset("proxy_valid", shape=(n,), dtype=bool, fillvalue=False)
    h5.flush()
    with VideoReader(proxy) as reader:
        frames = aligned_proxy_frames(reader, check) if check is not None else reader.iter_frames()
        region = RegionAccumulator(size)
        shifts = np.zeros((n, 2), np.float32)
        for index, frame in progress(frames, total=n, desc="proxy crops", enabled=show_progress):
            covered[index] = True
            if has_face[index]:
                crop, target, mask = warp_crop(frame, transforms[index], size), store.crop(index), \
                    store["masks"][index]
                if register:
                    crop, shifts[index], _ = register_proxy_crop(crop, target, mask)
                crops[index] = crop
                region.add(target, crop, mask)
    usable = has_face & covered
    valid[...] = usable
    group.create_dataset("swap_region", data=region.region())
    group.create_dataset("proxy_shift", data=shifts)
    group.attrs["complete"] = bool(usable.any())
    return int(usable.sum())


def to_tensor(images: Sequence[np.ndarray]) -> Tensor:
    """``uint8`` images ``(H, W, 3)`` or ``(H, W)`` -> ``(B, C, H, W)`` float32 in ``[0, 1]``."""
    batch = np.stack(images)
    if batch.ndim == 3:
        batch = batch[..., None]
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)


class CarrierDataset(torch.utils.data.Dataset):
    """Training triples ``(Xt, Xref, mask)`` of one video, read from its store a frame at a time.

    Needs the proxy-crop cache (:func:`prepare_proxy_crops`; ``cache``, default beside the store). Item ``k``
    is the ``k``-th training frame
    (frame index ``self.frames[k]``). Use as a context manager or call :meth:`close`.

    Args:
        store_path: the store.
        size: training crop side; ``None`` = the store's crop size; smaller sides resize with
            ``cv2.INTER_AREA``.

    Raises:
        InputError: the cache is missing or incomplete, or ``size`` is larger than the store's crops.
    """

    def __init__(self, store_path: str | Path, size: int | None = None, cache: str | Path | None = None) -> None:
        cache = Path(cache) if cache is not None else default_proxy_crops(store_path)
        self.cache = _cache_group(cache)
        if self.cache is None:
            raise InputError(f"no complete proxy-crop cache at {cache} (run prepare_proxy_crops first)")
        self.store = FaceStore.open(store_path)
        self._surface = None
        try:
            if self.cache[CARRIER_GROUP].attrs.get("crop_size") != self.store.crop_size:
                made = self.cache[CARRIER_GROUP].attrs.get("crop_size")
                raise InputError(f"{cache} was made for another store (crop size {made}, the store's "
                                 f"{self.store.crop_size})")
            self.crop_size = self.store.crop_size
            self.size = int(size or self.crop_size)
            if not 0 < self.size <= self.crop_size:
                raise InputError(f"size must be in [1, {self.crop_size}] (the store's crop size), got {self.size}")
            self.frames = np.flatnonzero(self.cache[PROXY_VALID][:])
            self.region = self.cache[SWAP_REGION][:] if SWAP_REGION in self.cache else None
            self.transforms = self.store["transforms"][:]
            self.proxy_sha256 = str(self.cache[CARRIER_GROUP].attrs["proxy_sha256"])
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.frames)

    def _resize(self, image: np.ndarray) -> np.ndarray:
        if self.size == self.crop_size:
            return image
        import cv2

        return cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)

    def read(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``frame``'s target crop, proxy crop ``(s, s, 3)`` and mask ``(s, s)``, all ``uint8``.

        The mask is the paste mask (:func:`~nice_core.carrier.region.store_paste_mask`: the face mask grown
        by the swap region), so the loss counts in full wherever the output will show.
        """
        h5 = self.store.h5
        mask = store_paste_mask(self.store, frame, self.region, self.transforms[frame])
        return (self._resize(h5["crops"][frame]), self._resize(self.cache[PROXY_CROPS][frame]),
                self._resize(np.round(mask * 255).astype(np.uint8)))

    def batch(self, items: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
        """Items ``items`` (positions in ``frames``) as ``(B, 3, s, s)``, ``(B, 3, s, s)``, ``(B, 1, s, s)``."""
        triples = [self.read(int(self.frames[k])) for k in items]
        return tuple(to_tensor([t[j] for t in triples]) for j in range(3))  # type: ignore[return-value]

    def surface_batch(self, items: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Items' surface grids ``(B, s, s, 2)`` and mesh coverage ``(B, 1, s, s)``
        (:class:`~nice_core.carrier.surface.SurfaceCoords`, built on first use)."""
        if self._surface is None:
            from nice_core.carrier.surface import SurfaceCoords

            self._surface = SurfaceCoords.from_store(self.store)
        pairs = [self._surface.grid(int(self.frames[k]), self.size) for k in items]
        grid = torch.from_numpy(np.stack([g for g, _ in pairs]))
        covered = torch.from_numpy(np.stack([c for _, c in pairs]))[:, None]
        return grid, covered

    def __getitem__(self, k: int) -> tuple[Tensor, Tensor, Tensor]:
        xt, xref, mask = self.batch([k])
        return xt[0], xref[0], mask[0]

    def close(self) -> None:
        self.store.close()
        self.cache.close()

    def __enter__(self) -> CarrierDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
