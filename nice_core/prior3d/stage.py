"""The 3D prior stage of one video: per frame UV geometry, lighting, albedo, detail, shape and identity, and
the identity's static statistics, cached in ``prior3d.h5`` for the carrier's 3D losses (NICe Sec. 3.2.2).

Backend ``mesh`` (the default, offline from what ships in installed packages): the tracked 468-point mesh
with mediapipe's canonical UV layout (:mod:`~nice_core.prior3d.uv`), SH lighting, albedo and detail in UV
(:mod:`~nice_core.prior3d.appearance`), Procrustes shape codes (:mod:`~nice_core.prior3d.shape`) and dlib's
identity network ported to torch (:mod:`~nice_core.prior3d.dlib_resnet`). Backend ``deca`` adds, from the
user's own ``deca_model.tar`` (:mod:`~nice_core.prior3d.deca`), DECA's codes of every frame: the 3D losses
then compare those, as the paper does; the UV maps are still written (the report and the detail score).

Three sources are analysed, each streamed a frame at a time (never the clip in memory):

* ``target``: every frame of the store's crops (per-frame datasets, one chunk per frame);
* ``proxy``: the proxy's frames, warped with the *target's* crop transforms and unwrapped on the target's
  mesh (the swap keeps the target's geometry), so the proxy's appearance lands on the texels it belongs to;
  its static statistics come from up to ``aggregate_frames`` frames spread over the clip;
* ``identity``: the identity input (a still, or up to ``identity_frames`` frames of a clip), tracked here;
  skipped for a self-swap, whose identity is the target.

Layout (N frames, U = ``uv_size``, T covered texels, A = U / 8):

===============================  ================  ===============================================
dataset                          shape, dtype      meaning
===============================  ================  ===============================================
``uv/skin``                      (U, U) bool       texels where static detail is measured
``uv/covered``                   (U, U) bool       texels inside the mesh's UV layout
``target/valid``                 (N,) bool         the frame has a face
``target/vertices``              (N, 468, 3) f4    mesh vertices in crop pixels (rebuild the unwrap)
``target/visibility``            (N, U, U) u1      visibility x 255
``target/lighting``              (N, 9) f4         SH lighting of the luminance (mean shading 1)
``target/albedo``                (N, A, A, 3) f2   the albedo code: low-pass reflectance, pooled
``target/detail``                (N, U, U) f2      detail code: high-pass log-brightness
``target/shape``                 (N, 468, 3) f4    shape code: pose-free vertices (canonical cm)
``target/embedding``             (N, 128) f4       identity embedding (dlib metric: < 0.6 same person)
``proxy/...``                    as ``target/``    the proxy's, on the target's geometry (no vertices,
                                                   shape or lighting: they are the target's)
``<source>/static/detail``       (U, U) f4         visibility-weighted median detail over frames
``<source>/static/weight``       (U, U) f4         the weight behind it (0: never seen)
``<source>/static/albedo``       (U, U, 3) f4      weighted median albedo
``<source>/static/embedding``    (128,) f4         mean embedding (unit frames' mean)
``<source>/static/shape``        (468, 3) f4       median shape code (target and identity only)
``<source>/static/frames``       (K,) i4           the frames the statistics came from
``<source>/deca/<code>``         (N, k) f4         backend ``deca``: DECA's ``shape`` (100), ``tex``
                                                   (50), ``exp`` (50), ``pose`` (6), ``cam`` (3),
                                                   ``light`` (27) and ``detail`` (128) codes
``<source>/deca/box``            (N, 3) f4         the crop DECA saw: centre x, y and side (crop px)
``<source>/static/deca/<code>``  (k,) f4           median ``shape``, ``tex``, ``detail`` codes
===============================  ================  ===============================================

Attributes: ``schema_version``, ``backend``, ``backend_version``, ``nice_core_version``, ``config`` (JSON),
``crop_size``, ``crop_scale``, ``uv_size``,
``inputs`` and ``models`` (JSON: name -> {path, sha256}: a changed file means a stale cache), ``sources``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nice_core.errors import InputError, NoFaceError, OutputError, is_disk_full
from nice_core.prior3d.config import BACKEND_VERSIONS, BACKENDS, Prior3DConfig
from nice_core.progress import progress

if TYPE_CHECKING:  # torch and the analysis load only when the stage runs (the CLI imports this module)
    from nice_core.prior3d.analysis import FrameAnalyser, SourceStats

__all__ = ["BACKENDS", "Prior3DConfig", "Prior3DResult", "build_prior3d", "open_prior3d", "prior3d_current"]

SCHEMA_VERSION = 1
#: Frames analysed together (one torch batch).
BATCH = 16
READ_BLOCK = 1024  # frames of landmarks read at once
SMOOTH_COLUMNS = 117  # vertex coordinates smoothed at once (a twelfth of 468 * 3)


@dataclass(frozen=True)
class Prior3DResult:
    """What :func:`build_prior3d` wrote."""

    path: Path
    frames: int
    sources: tuple[str, ...]
    seconds: float

    def summary(self) -> str:
        return f"{self.frames} frames, sources {', '.join(self.sources)}, {self.seconds:.0f} s"


def open_prior3d(path: str | Path):
    """Open a ``prior3d.h5`` for reading, checking that it is one (one clear line if not)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"3D prior not found: {path} (run `nice-core prior3d` first)")
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise InputError(f"not a readable HDF5 file: {path}") from None
    if h5.attrs.get("schema_version") != SCHEMA_VERSION or "target" not in h5:
        h5.close()
        raise InputError(f"{path} is not a nice-core 3D prior of schema {SCHEMA_VERSION}")
    return h5


def prior3d_current(path: str | Path, store: str | Path, proxy: str | Path | None, identity: str | Path | None,
                    config: Prior3DConfig) -> bool:
    """Whether ``path`` is a complete 3D prior of exactly these inputs (by SHA-256) and settings, so a resumed
    run can reuse it."""
    try:
        with open_prior3d(path) as h5:
            inputs, models = json.loads(h5.attrs["inputs"]), json.loads(h5.attrs["models"])
            same_config = json.loads(h5.attrs["config"]) == json.loads(json.dumps(asdict(config)))
        same_models = all(Path(m["path"]).is_file() and _digests({"m": Path(m["path"])})["m"]["sha256"] == m["sha256"]
                          for m in models.values())
    except (InputError, OSError, KeyError, ValueError, TypeError):
        return False
    wanted = _digests({"store": Path(store), "proxy": Path(proxy) if proxy else None,
                       "identity": Path(identity) if identity else None})
    same_inputs = {k: v["sha256"] for k, v in inputs.items()} == {k: v["sha256"] for k, v in wanted.items()}
    return same_config and same_models and same_inputs


def _digests(paths: dict[str, Path | None]) -> dict[str, dict]:
    from nice_core.io.digest import file_sha256

    return {name: {"path": str(p), "sha256": file_sha256(p)} for name, p in paths.items() if p is not None}


def _per_frame(group, n: int, raster_size: int, with_geometry: bool, deca: bool) -> None:
    """Create a source's per-frame datasets (one chunk per frame, lzf)."""
    u, a = raster_size, raster_size // 8

    def make(name: str, shape: tuple[int, ...], dtype: str) -> None:
        group.create_dataset(name, shape=(n, *shape), dtype=dtype, chunks=(1, *shape), compression="lzf")

    group.create_dataset("valid", shape=(n,), dtype=bool, fillvalue=False)
    make("visibility", (u, u), "u1")
    make("albedo", (a, a, 3), "f2")
    make("detail", (u, u), "f2")
    make("embedding", (128,), "f4")
    if with_geometry:
        make("vertices", (468, 3), "f4")
        make("lighting", (9,), "f4")
        make("shape", (468, 3), "f4")
    if deca:
        from nice_core.prior3d.deca import CODE_SIZES, DETAIL_SIZE

        codes = group.create_group("deca")
        for name, size in (CODE_SIZES | {"detail": DETAIL_SIZE, "box": 3}).items():
            codes.create_dataset(name, shape=(n, size), dtype="f4", chunks=(min(n, 256), size))


def _write_static(group, stats: SourceStats, analyser: FrameAnalyser) -> None:
    static = group.create_group("static")
    detail, albedo, weight = stats.static_maps(analyser.raster)
    static.create_dataset("detail", data=detail)
    static.create_dataset("weight", data=weight)
    static.create_dataset("albedo", data=albedo)
    static.create_dataset("embedding", data=stats.mean_embedding())
    if stats.shapes:
        static.create_dataset("shape", data=np.median(np.stack(stats.shapes), axis=0).astype(np.float32))
    static.create_dataset("frames", data=np.asarray(stats.frames, np.int32))
    for name, code in stats.deca_medians().items():
        static.create_dataset(f"deca/{name}", data=code)


def _aggregate_picks(valid: np.ndarray, count: int) -> set[int]:
    """Up to ``count`` valid frame indices spread evenly over the clip."""
    frames = np.flatnonzero(valid)
    if len(frames) <= count:
        return set(frames.tolist())
    return set(frames[np.round(np.linspace(0, len(frames) - 1, count)).astype(int)].tolist())


def _analyse_target(store, h5, analyser: FrameAnalyser, vertices: np.ndarray, valid: np.ndarray,
                    picks: set[int], show: bool) -> SourceStats:
    from nice_core.prior3d.analysis import SourceStats

    group = h5.create_group("target")
    n = store.n_frames
    _per_frame(group, n, analyser.raster.size, with_geometry=True, deca=analyser.deca is not None)
    group["valid"][:] = valid
    stats = SourceStats()
    indices = np.flatnonzero(valid)
    for start in progress(range(0, len(indices), BATCH), total=-(-len(indices) // BATCH), desc="prior3d target",
                          enabled=show):
        batch = indices[start:start + BATCH]
        crops = np.stack([store.crop(int(i)) for i in batch])
        out = analyser.analyse(crops, vertices[batch])
        for k, index in enumerate(batch):
            _store_frame(group, int(index), out, k, geometry=True)
            if int(index) in picks:
                stats.add(int(index), out, k, shape=True)
    return stats


def _store_frame(group, index: int, out: dict, k: int, geometry: bool) -> None:
    group["visibility"][index] = np.round(out["visibility_map"][k] * 255).astype(np.uint8)
    group["albedo"][index] = out["albedo_code"][k].astype(np.float16)
    group["detail"][index] = out["detail_map"][k].astype(np.float16)
    group["embedding"][index] = out["embedding"][k]
    if geometry:
        group["vertices"][index] = out["vertices"][k]
        group["lighting"][index] = out["lighting"][k]
        group["shape"][index] = out["shape"][k]
    if "deca" in out:
        for name, code in out["deca"].items():
            group["deca"][name][index] = code[k]
        group["deca"]["box"][index] = out["deca_box"][k]


def _analyse_proxy(store, h5, analyser: FrameAnalyser, proxy: Path, check, vertices: np.ndarray,
                   valid: np.ndarray, picks: set[int], show: bool) -> SourceStats:
    from nice_core.face.alignment import warp_crop
    from nice_core.io.reader import VideoReader
    from nice_core.prior3d.analysis import SourceStats
    from nice_core.proxy.check import aligned_proxy_frames

    group = h5.create_group("proxy")
    n, size = store.n_frames, store.crop_size
    _per_frame(group, n, analyser.raster.size, with_geometry=False, deca=analyser.deca is not None)
    transforms = store["transforms"][:]
    stats = SourceStats()
    seen = np.zeros(n, bool)
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        batch = np.array([i for i, _ in pending])
        out = analyser.analyse(np.stack([c for _, c in pending]), vertices[batch])
        for k, index in enumerate(batch):
            _store_frame(group, int(index), out, k, geometry=False)
            if int(index) in picks:
                stats.add(int(index), out, k, shape=False)
        pending.clear()

    with VideoReader(proxy) as reader:
        frames = aligned_proxy_frames(reader, check) if check is not None else reader.iter_frames()
        for index, frame in progress(frames, total=n, desc="prior3d proxy", enabled=show):
            if index < n and valid[index]:
                seen[index] = True
                pending.append((index, warp_crop(frame, transforms[index], size)))
                if len(pending) == BATCH:
                    flush()
        if pending:
            flush()
    group["valid"][:] = seen
    return stats


def build_prior3d(store_path: str | Path, output: str | Path, *, proxy: str | Path | None = None, check=None,
                  identity: str | Path | None = None, config: Prior3DConfig | None = None,
                  threads: int | None = None, show_progress: bool | None = None) -> Prior3DResult:
    """Run the 3D prior stage for one video and write ``output`` (``prior3d.h5``) atomically.

    Args:
        store_path: the target's face store (``face.h5``).
        output: the HDF5 file to write (nothing is left there if this fails).
        proxy: the proxy video (its crops are analysed on the target's geometry); ``None``: no proxy source.
        check: the proxy's :class:`~nice_core.proxy.check.ProxyCheck` (frame offset, rescale).
        identity: the identity image or clip; ``None`` or the target itself (a self-swap): no identity source.
        config: the settings.
        threads: ``torch.set_num_threads`` while it runs (restored afterwards); ``None``: torch's choice.

    Raises:
        InputError: an input is unusable; NoFaceError: no face in the identity (or the target).
    """
    import time

    import h5py
    import torch

    from nice_core.io.atomic import atomic_output
    from nice_core.prior3d.analysis import FrameAnalyser
    from nice_core.store import FaceStore

    config = config or Prior3DConfig()
    show = sys.stderr.isatty() if show_progress is None else show_progress
    started = time.perf_counter()
    store_path, output = Path(store_path), Path(output)
    proxy = Path(proxy) if proxy is not None else None
    identity = given = Path(identity) if identity is not None else None
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with FaceStore.open(store_path) as store:
            target_video = Path(store.h5.attrs["video"]) if "video" in store.h5.attrs else None
            if identity is not None and target_video is not None and identity.resolve() == target_video.resolve():
                identity = None  # a self-swap: the identity's appearance is the target's
            valid = store["has_face"][:]
            if not valid.any():
                raise NoFaceError(f"{store_path} has no frame with a face")
            vertices = _smoothed_vertices(store, valid, config.smooth_frames)
            analyser = FrameAnalyser(config, store.crop_size, _crop_scale(store))
            picks = _aggregate_picks(valid, config.aggregate_frames)
            identity_stats = _identity_first(analyser, identity, config, store.crop_size)
            with atomic_output(output, (store_path, proxy, given)) as tmp, h5py.File(tmp, "w") as h5:
                _write_header(h5, analyser, config, store_path, proxy, given)
                stats = {"target": _analyse_target(store, h5, analyser, vertices, valid, picks, show)}
                if proxy is not None:
                    stats["proxy"] = _analyse_proxy(store, h5, analyser, proxy, check, vertices, valid, picks, show)
                if identity_stats is not None:
                    h5.create_group("identity")
                    stats["identity"] = identity_stats
                for name, source in stats.items():
                    _write_static(h5[name], source, analyser)
                h5.attrs["sources"] = json.dumps(list(stats))
    except OSError as err:
        if is_disk_full(err):
            raise OutputError(f"no space left on device writing {output}") from None
        raise
    finally:
        torch.set_num_threads(old_threads)
    return Prior3DResult(output, int(valid.sum()), tuple(stats), time.perf_counter() - started)


def _identity_first(analyser: FrameAnalyser, identity: Path | None, config: Prior3DConfig,
                    crop_size: int) -> SourceStats | None:
    """The identity input's statistics, computed before the long target pass so a bad identity (no face, a
    face too small) fails at once."""
    if identity is None:
        return None
    from nice_core.prior3d.analysis import SourceStats
    from nice_core.prior3d.identity_input import identity_crops

    stats = SourceStats()
    crops, vertices, frames = identity_crops(identity, crop_size, config.identity_frames, config.min_identity_face,
                                             analyser.crop_scale)
    for start in range(0, len(frames), BATCH):
        out = analyser.analyse(crops[start:start + BATCH], vertices[start:start + BATCH])
        for k in range(len(out["embedding"])):
            stats.add(int(frames[start + k]), out, k, shape=True)
    return stats


def _crop_scale(store) -> float:
    """The tracker's ``face.crop_scale`` for this store (1.0 when it did not record one)."""
    try:
        return float(store.json_attr("config").get("crop_scale", 1.0))
    except (KeyError, ValueError):
        return 1.0


def _smoothed_vertices(store, valid: np.ndarray, sigma: float) -> np.ndarray:
    """``(N, 468, 3)`` ``float32`` crop-pixel vertices of every frame, smoothed over time like the crops are.

    The result is the only whole-clip array (5.6 kB a frame): the landmarks are read in blocks of frames and
    the smoothing (float64, with padded copies) runs on blocks of coordinates, so a 10-minute clip adds tens of
    megabytes, not the gigabyte the plain whole-clip version took.
    """
    from nice_core.face.alignment import smooth_series
    from nice_core.prior3d.uv import crop_vertices

    n = len(valid)
    vertices = np.zeros((n, 468 * 3), np.float32)
    for start in range(0, n, READ_BLOCK):
        stop = min(n, start + READ_BLOCK)
        landmarks, transforms = store["landmarks"][start:stop], store["transforms"][start:stop]
        for i in np.flatnonzero(valid[start:stop]):
            vertices[start + i] = crop_vertices(landmarks[i], transforms[i]).reshape(-1)
    shots = store.shots()
    for column in range(0, vertices.shape[1], SMOOTH_COLUMNS):  # never across a shot cut
        block = slice(column, column + SMOOTH_COLUMNS)
        vertices[:, block] = smooth_series(vertices[:, block], valid, sigma, shots)
    return vertices.reshape(n, 468, 3)


def _write_header(h5, analyser: FrameAnalyser, config: Prior3DConfig, store_path: Path, proxy: Path | None,
                  identity: Path | None) -> None:
    from nice_core import __version__

    h5.attrs.update(schema_version=SCHEMA_VERSION, backend=config.backend,
                    backend_version=BACKEND_VERSIONS[config.backend], nice_core_version=__version__,
                    config=json.dumps(asdict(config)), crop_size=analyser.crop_size,
                    crop_scale=analyser.crop_scale, uv_size=analyser.raster.size)
    h5.attrs["inputs"] = json.dumps(_digests({"store": store_path, "proxy": proxy, "identity": identity}))
    h5.attrs["models"] = json.dumps(_digests(analyser.model_files()))
    uv = h5.create_group("uv")
    covered = np.zeros(analyser.raster.size ** 2, bool)
    covered[analyser.raster.texels] = True
    uv.create_dataset("covered", data=covered.reshape(analyser.raster.size, -1))
    uv.create_dataset("skin", data=analyser.raster.to_map(analyser.raster.skin.astype(np.float32)) > 0)
