"""The carrier's 3D losses (NICe Sec. 3.4.2), computed on its output from the cached 3D prior.

* ``L_albedo(Xo, Xt)``: the output's low-frequency, lighting-normalised reflectance in UV against the target
  frame's (skin tone consistent with the neck and the rest of the head the swap does not touch);
* ``L_shape(Xo, Xid)``: the identity network's embedding of the output against the identity's (the
  ``mesh`` backend's geometric shape code is the tracked target's for every output, so it carries no
  gradient; the embedding is what the output's pixels change);
* ``L_detail(Xo, Xid)``: the output's UV detail against the identity's static detail, tolerant of a texel of
  misalignment (:func:`tolerant_detail_distance`).

With a prior of backend ``deca`` the three terms are the paper's: distances between DECA's codes
(:mod:`~nice_core.prior3d.deca`) of the output and the cached codes: the albedo (``tex``) code against the
target frame's, the shape code (or, with FLAME, its neutral mesh, in mm) and the detail code against the
identity's static ones (:class:`DecaTerms`).

Nothing is re-detected during the fit: per frame the mesh vertices (hence the UV unwrap), visibility and
lighting come from ``prior3d.h5`` (:class:`Prior3DFrames`), and the identity's statistics from its
``static`` groups. The carrier trains on windows of its crops (``patch``); texels outside the window count
zero, and the identity network sees the target crop with the output pasted into the window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nice_core.errors import InputError
from nice_core.prior3d import DETAIL_SOURCES, appearance
from nice_core.prior3d.analysis import identity_chips, pool_albedo
from nice_core.prior3d.uv import UVRaster, texel_normals, texel_planes, texel_points, unwrap, uv_raster

__all__ = ["DETAIL_SOURCES", "DecaTerms", "Prior3DFrames", "Prior3DLoss", "Window", "deca_distances",
           "tolerant_detail_distance"]


@dataclass(frozen=True)
class Window:
    """The part of the crop the carrier ran on: top-left corner ``(x, y)`` and ``side``, in pixels of the
    training size ``size`` (the whole crop: ``(0, 0)`` and ``size``)."""

    x: int
    y: int
    side: int
    size: int


#: Gaussian sigma (texels) both detail maps are blurred by before they are compared.
TOLERANCE_SIGMA = 1.0


def tolerant_detail_distance(output: Tensor, identity: Tensor, weights: Tensor, raster: UVRaster) -> Tensor:
    """L1 between UV detail maps after a light blur of both (sigma :data:`TOLERANCE_SIGMA` texels): a mark a
    texel off still overlaps its place (a 3-texel mark one texel off costs 0.6 of missing it, skin texture one
    texel off 0.4; three texels off cost as much as missing it), and every texel of the output gets a
    gradient.

    Why not a minimum over each texel's neighbours (which forgives a texel entirely): its gradient reaches one
    neighbour per texel and noise-like texture always finds a close neighbour; in the development runs on
    the marked clip of ``bench/prior3d_detail.py`` (not kept as a benchmark variant) it pulled the carrier's
    output towards the identity's detail less than a plain L1 did.

    Args:
        output: ``(B, T)`` the output's detail; identity: ``(B, T)`` or ``(T,)`` the identity's static detail.
        weights: ``(B, T)`` texel weights (0: not compared).

    Returns:
        ``(B,)`` weighted mean distances.
    """
    if identity.ndim == 1:
        identity = identity.expand_as(output)
    both = torch.stack([output, identity], dim=1)
    blurred = appearance.masked_blur(both, (weights > 0).to(output.dtype), raster, TOLERANCE_SIGMA)
    diff = (blurred[:, 0] - blurred[:, 1]).abs()
    return (diff * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-6)


class Prior3DFrames:
    """What the 3D losses read from ``prior3d.h5`` for one fit, kept open and read a batch at a time.

    Args:
        path: the stage's output.
        crop_size: the face store's crop side (the prior's pixel frame must be the same).
        detail_source: one of :data:`DETAIL_SOURCES`.

    Raises:
        InputError: not a 3D prior of this store, or the requested source is missing.
    """

    def __init__(self, path: str | Path, crop_size: int, detail_source: str = "proxy") -> None:
        from nice_core.io.digest import file_sha256
        from nice_core.prior3d.stage import open_prior3d

        if detail_source not in DETAIL_SOURCES:
            raise InputError(f"detail_source must be one of {DETAIL_SOURCES}, got {detail_source!r}")
        self.h5 = open_prior3d(path)
        try:
            if int(self.h5.attrs["crop_size"]) != int(crop_size):
                raise InputError(f"{path} was made for {self.h5.attrs['crop_size']} px crops, the store has "
                                 f"{crop_size} px")
            self.crop_size = int(crop_size)
            self.crop_scale = float(self.h5.attrs.get("crop_scale", 1.0))
            stage = json.loads(self.h5.attrs["config"])
            # The output is measured as the stage measured the identity: with its low-pass sigmas.
            self.albedo_sigma, self.detail_sigma = float(stage["albedo_sigma"]), float(stage["detail_sigma"])
            self.sha256 = file_sha256(path)
            self.backend = str(self.h5.attrs.get("backend", "mesh"))
            self.models = json.loads(self.h5.attrs["models"])
            self.raster = uv_raster(int(self.h5.attrs["uv_size"]))
            self.detail, self.detail_weight = self._identity_detail(path, detail_source)
            self.embedding = torch.from_numpy(self._identity_embedding())
            target = self.h5["target"]
            self._vertices, self._lighting, self._albedo = target["vertices"], target["lighting"], target["albedo"]
            self._visibility = target["visibility"]
            if self.backend == "deca":
                self._check_deca_models(path)
                self.deca_identity = self._deca_identity(path, detail_source)
                self._deca_tex, self._deca_box = target["deca"]["tex"], target["deca"]["box"]
        except BaseException:
            self.h5.close()
            raise

    def _static(self, source: str) -> dict[str, np.ndarray] | None:
        if source not in self.h5 or "static" not in self.h5[source]:
            return None
        static = self.h5[source]["static"]
        return {name: static[name][()] for name in ("detail", "weight", "embedding")}

    def _identity_sources(self, source: str, has) -> list[str]:
        """The sources the identity's statistics come from: ``proxy``, ``identity`` or, for ``both``, each
        of them that ``has(name)``. A self-swap has no identity source: its identity is the proxy's
        appearance (and the target's, which it shows)."""
        found = [name for name in (("proxy", "identity") if source == "both" else (source,)) if has(name)]
        if not found and source == "identity" and has("proxy"):
            found = ["proxy"]
        return found

    def _identity_detail(self, path, source: str) -> tuple[Tensor, Tensor]:
        """The identity's static detail and its weights ``(T,)`` from the chosen source(s)
        (:meth:`_identity_sources`)."""
        statics = {name: self._static(name) for name in ("proxy", "identity")}
        found = [statics[name] for name in self._identity_sources(source, lambda name: statics[name] is not None)]
        if not found:
            raise InputError(f"{path} has no {source} statistics (run `nice-core prior3d` with --proxy)")
        weights = np.stack([self.raster.from_map(s["weight"]) for s in found])
        values = np.stack([self.raster.from_map(s["detail"]) for s in found])
        total = weights.sum(axis=0)
        mean = (values * weights).sum(axis=0) / np.maximum(total, 1e-6)
        return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy((total > 0).astype(np.float32))

    def _check_deca_models(self, path) -> None:
        """The DECA (and FLAME) files the prior was made with must still be there, unchanged."""
        from nice_core.io.digest import file_sha256

        for name in ("deca_model", "flame_model"):
            model = self.models.get(name)
            if model is None:
                continue
            file = Path(model["path"])
            if not file.is_file():
                raise InputError(f"{path} was made with {name} {file}, which is gone")
            if file_sha256(file) != model["sha256"]:
                raise InputError(f"{file} changed since {path} was made (rerun `nice-core prior3d`)")

    def _deca_identity(self, path, source: str) -> dict[str, Tensor]:
        """The identity's static DECA ``shape`` and ``detail`` codes from the chosen source(s) (their mean
        for ``both``; a self-swap's identity is the proxy's)."""
        def has(name: str) -> bool:
            return name in self.h5 and "static" in self.h5[name] and "deca" in self.h5[name]["static"]

        found = [self.h5[name]["static"]["deca"] for name in self._identity_sources(source, has)]
        if not found:
            raise InputError(f"{path} has no {source} DECA codes (run `nice-core prior3d` with --proxy)")
        return {name: torch.from_numpy(np.mean([g[name][()] for g in found], axis=0).astype(np.float32))
                for name in ("shape", "detail")}

    def deca_batch(self, frames: list[int]) -> dict[str, Tensor]:
        """Frames' target albedo codes ``tex`` ``(B, 50)`` and DECA crop boxes ``box`` ``(B, 3)``."""
        return {"tex": torch.from_numpy(np.stack([self._deca_tex[int(i)] for i in frames])),
                "box": torch.from_numpy(np.stack([self._deca_box[int(i)] for i in frames]))}

    def _identity_embedding(self) -> np.ndarray:
        for source in ("identity", "proxy"):
            static = self._static(source)
            if static is not None:
                return static["embedding"].astype(np.float32)
        raise InputError("the 3D prior has no identity embedding")

    def batch(self, frames: list[int]) -> dict[str, Tensor]:
        """Frames' ``vertices`` ``(B, 468, 3)``, ``lighting`` ``(B, 9)``, ``albedo`` ``(B, 3, A, A)`` and
        ``visibility`` ``(B, T)``."""
        order = np.argsort(frames)
        inverse = np.argsort(order)
        sorted_frames = np.asarray(frames)[order]

        def read(dataset) -> np.ndarray:
            return np.stack([dataset[int(i)] for i in sorted_frames])[inverse]

        visibility = self.raster.from_map(read(self._visibility).astype(np.float32) / 255.0)
        return {"vertices": torch.from_numpy(read(self._vertices)),
                "lighting": torch.from_numpy(read(self._lighting)),
                "albedo": torch.from_numpy(read(self._albedo).astype(np.float32)).permute(0, 3, 1, 2),
                "visibility": torch.from_numpy(visibility.astype(np.float32))}

    def close(self) -> None:
        self.h5.close()


class Prior3DLoss(torch.nn.Module):
    """The weighted sum of the 3D losses on a batch of carrier outputs.

    Args:
        frames: the fit's :class:`Prior3DFrames` (its sigmas and crop scale are the stage's).
        albedo_weight, shape_weight, detail_weight: the terms' weights (0: the term is not computed).
    """

    def __init__(self, frames: Prior3DFrames, albedo_weight: float, shape_weight: float,
                 detail_weight: float) -> None:
        super().__init__()
        self.frames = frames
        self.weights = {"albedo": albedo_weight, "shape": shape_weight, "detail": detail_weight}
        self._skin = torch.from_numpy(frames.raster.skin.astype(np.float32))
        self._network = None
        self.deca = DecaTerms(frames) if frames.backend == "deca" else None

    @property
    def network(self):
        if self._network is None:
            from nice_core.prior3d.dlib_resnet import load_dlib_face_resnet

            self._network = load_dlib_face_resnet()
        return self._network

    def forward(self, output: Tensor, frames: list[int], window: Window, full: Tensor | None = None
                ) -> tuple[Tensor, dict[str, float]]:
        """The 3D loss of ``output`` ``(B, 3, side, side)`` in ``[0, 1]``, the carrier's output on ``window``
        of frames ``frames``; ``full`` ``(B, 3, size, size)`` is the whole target crop (needed by the shape
        term when the window is not the whole crop). Returns the loss and its terms for logging."""
        device = output.device
        total = output.new_zeros(())
        logs: dict[str, float] = {}
        if self.deca is not None:
            whole = output if full is None else _paste(full.to(device), output, window)
            terms = self.deca(whole, frames, window.size / self.frames.crop_size)
            for name, term in terms.items():
                if self.weights[name] > 0:
                    total = total + self.weights[name] * term
                    logs[f"{name}3d"] = float(term.detach())
            return total, logs
        if self.weights["detail"] > 0 or self.weights["albedo"] > 0:
            total = total + self._uv_terms(output, frames, window, logs)
        if self.weights["shape"] > 0:
            whole = output if full is None else _paste(full.to(device), output, window)
            embedding = self.network.to(device)(identity_chips(whole.clamp(0, 1), self.frames.crop_scale))
            term = (embedding - self.frames.embedding.to(device)).norm(dim=1).mean()
            total = total + self.weights["shape"] * term
            logs["shape3d"] = float(term.detach())
        return total, logs

    def _uv_terms(self, output: Tensor, frames: list[int], window: Window, logs: dict[str, float]) -> Tensor:
        """The weighted detail and albedo terms, on the output unwrapped on its frames' cached meshes."""
        raster, data = self.frames.raster, self.frames.batch(frames)
        device = output.device
        vertices = data["vertices"].to(device)
        scale = window.size / self.frames.crop_size
        points = texel_points(vertices, raster)
        local = points[..., :2] * scale - torch.tensor([window.x, window.y], dtype=points.dtype, device=device)
        inside = ((local >= 0) & (local < window.side)).all(dim=-1).to(output.dtype)
        seen = data["visibility"].to(device) * inside
        skin = seen * self._skin.to(device)
        colours = unwrap(output, local, window.side)
        total = output.new_zeros(())
        if self.weights["detail"] > 0:
            detail = appearance.detail(colours, seen, raster, self.frames.detail_sigma)
            weights = skin * self.frames.detail_weight.to(device)
            term = tolerant_detail_distance(detail, self.frames.detail.to(device), weights, raster).mean()
            total = total + self.weights["detail"] * term
            logs["detail3d"] = float(term.detach())
        if self.weights["albedo"] > 0:
            albedo = appearance.albedo(colours, data["lighting"].to(device), texel_normals(vertices, raster), skin,
                                       raster, self.frames.albedo_sigma)
            pooled = pool_albedo(albedo, skin, raster)
            block = (torch.nn.functional.avg_pool2d(texel_planes(skin[:, None], raster), 8) > 0).to(output.dtype)
            term = ((pooled - data["albedo"].to(device)).abs() * block).sum() / (3 * block.sum()).clamp_min(1)
            total = total + self.weights["albedo"] * term
            logs["albedo3d"] = float(term.detach())
        return total


def deca_distances(codes: dict[str, Tensor], target_tex: Tensor, identity: dict[str, Tensor],
                   flame=None) -> dict[str, Tensor]:
    """The ``deca`` backend's three terms ``(B,)`` from the output's DECA codes: ``albedo``, the mean absolute
    difference of ``tex`` codes to the target frames' ``target_tex`` ``(B, 50)``; ``shape``, of ``shape``
    codes to the identity's ``(100,)`` (with a :class:`~nice_core.prior3d.deca.FlameModel`: the mean distance
    between the two neutral FLAME meshes' vertices, in mm); ``detail``, of ``detail`` codes to the
    identity's ``(128,)``."""
    if flame is not None:
        meshes = flame.neutral_vertices(torch.cat([codes["shape"], identity["shape"][None]]))
        shape = (meshes[:-1] - meshes[-1:]).norm(dim=-1).mean(dim=-1) * 1000.0
    else:
        shape = (codes["shape"] - identity["shape"]).abs().mean(dim=-1)
    return {"albedo": (codes["tex"] - target_tex).abs().mean(dim=-1), "shape": shape,
            "detail": (codes["detail"] - identity["detail"]).abs().mean(dim=-1)}


class DecaTerms(torch.nn.Module):
    """The ``deca`` backend's terms on whole carrier outputs: DECA's encoders (read from the file the prior
    was made with) run on each output's cached DECA crop box; :func:`deca_distances` compares the codes.

    ``forward(whole, frames, scale)``: ``(B, 3, S, S)`` outputs in ``[0, 1]`` (the target crop with the output
    pasted in), their frame numbers, and ``S`` over the store's crop side -> the batch means of
    ``albedo``, ``shape`` and ``detail``.
    """

    def __init__(self, frames: Prior3DFrames) -> None:
        super().__init__()
        from nice_core.prior3d.deca import load_deca_encoders, read_flame_model

        self.frames = frames
        self.encoders = load_deca_encoders(frames.models["deca_model"]["path"])
        flame = frames.models.get("flame_model")
        self.flame = read_flame_model(flame["path"]) if flame else None

    def forward(self, whole: Tensor, frames: list[int], scale: float) -> dict[str, Tensor]:
        from nice_core.prior3d.deca import cut_crops

        device = whole.device
        cached = self.frames.deca_batch(frames)
        boxes = cached["box"].to(device) * scale
        codes = self.encoders.to(device)(cut_crops(whole.clamp(0, 1), boxes))
        identity = {name: code.to(device) for name, code in self.frames.deca_identity.items()}
        terms = deca_distances(codes, cached["tex"].to(device), identity, self.flame)
        return {name: term.mean() for name, term in terms.items()}


def _paste(full: Tensor, window_output: Tensor, window: Window) -> Tensor:
    """``full`` with ``window_output`` in its window (differentiable in the output)."""
    if window.side == window.size:
        return window_output
    out = full.clone()
    out[..., window.y:window.y + window.side, window.x:window.x + window.side] = window_output
    return out
