"""One batch of face crops through the 3D prior's backend, and the static statistics of a source's frames.

:class:`FrameAnalyser` turns ``(B, S, S, 3)`` crops and their ``(B, 468, 3)`` crop-pixel vertices into
everything the stage stores per frame (see :mod:`nice_core.prior3d.stage`): the ``mesh`` backend's UV maps,
lighting, shape and identity embedding, and with the ``deca`` backend also DECA's codes
(:mod:`nice_core.prior3d.deca`). :class:`SourceStats` collects the frames a source's static statistics are
taken over. :func:`identity_chips` cuts the identity network's input from crops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nice_core.prior3d import appearance
from nice_core.prior3d.shape import shape_code
from nice_core.prior3d.uv import (
    UVRaster,
    texel_normals,
    texel_planes,
    texel_points,
    texel_visibility,
    unwrap,
    uv_raster,
)

__all__ = ["CHIP_BOX", "DECA_STATIC", "FrameAnalyser", "SourceStats", "deca_codes", "identity_chips", "pool_albedo"]

#: DECA's codes whose median over a source's frames is kept as its static statistics.
DECA_STATIC = ("shape", "tex", "detail")

#: Where dlib's 150 px face chip (its 5-point alignment, padding 0.25) lies in the tracker's FFHQ-aligned
#: crop at ``face.crop_scale`` 1: centre x, centre y and side, as fractions of the crop side. Measured on 21
#: frames of the bundled sample (std 0.009, 0.005, 0.012; the chips' rotation against the crop 2.9 +- 2.8
#: degrees, left out). Both alignments are similarities fixed to the eyes and mouth, so the box is constant.
CHIP_BOX = (0.494, 0.600, 0.686)
CHIP_SIZE = 150


def identity_chips(crops: Tensor, crop_scale: float = 1.0) -> Tensor:
    """The identity network's ``(B, 3, 150, 150)`` chips, cut from ``(B, 3, S, S)`` crops in ``[0, 1]``.

    Differentiable in ``crops`` (bilinear ``grid_sample``), so an identity loss reaches the carrier's output.
    ``crop_scale`` is the tracker's ``face.crop_scale`` (a larger crop holds a smaller face).
    """
    cx, cy, side = CHIP_BOX
    side = side / crop_scale
    theta = torch.tensor([[side, 0.0, (2 * cx - 1) / crop_scale], [0.0, side, (2 * cy - 1) / crop_scale]],
                         dtype=crops.dtype, device=crops.device).expand(len(crops), 2, 3)
    grid = torch.nn.functional.affine_grid(theta, [len(crops), 3, CHIP_SIZE, CHIP_SIZE], align_corners=False)
    return torch.nn.functional.grid_sample(crops, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


def pool_albedo(albedo: Tensor, weights: Tensor, raster: UVRaster) -> Tensor:
    """The albedo code: ``(B, 3, T)`` albedo averaged over ``8 x 8`` texel blocks, weighted -> ``(B, 3, A, A)``
    with ``A = U / 8`` (0 where no weight falls)."""
    w = weights[:, None].to(albedo.dtype)
    planes = texel_planes(torch.cat([albedo * w, w], dim=1), raster)
    pooled = torch.nn.functional.avg_pool2d(planes, 8)
    return pooled[:, :3] / pooled[:, 3:].clamp_min(1e-6)


def deca_codes(encoders, images: Tensor, vertices: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """DECA's codes of ``(B, 3, S, S)`` crops in ``[0, 1]`` whose faces have ``(B, 468, 2+)`` vertices in the
    crops' pixels, and the ``(B, 3)`` boxes DECA saw (differentiable in ``images``)."""
    from nice_core.prior3d.deca import crop_boxes, cut_crops

    boxes = crop_boxes(vertices)
    return encoders(cut_crops(images, boxes)), boxes


class FrameAnalyser:
    """The backend's per-frame analysis (see :mod:`nice_core.prior3d.stage` for what it yields).

    Args:
        config: a :class:`~nice_core.prior3d.stage.Prior3DConfig`; with backend ``deca`` its model files are
            read here (a missing or malformed one fails before any frame is analysed).
        crop_size: the side of the crops (and of the vertices' pixel frame).
        crop_scale: the tracker's ``face.crop_scale`` (for :func:`identity_chips`).
    """

    def __init__(self, config, crop_size: int, crop_scale: float = 1.0) -> None:
        self.config = config
        self.crop_size = int(crop_size)
        self.crop_scale = float(crop_scale)
        self.raster = uv_raster(config.uv_size)
        self._skin = torch.from_numpy(self.raster.skin.astype(np.float32))
        self._network = None
        self.deca = None
        if config.backend == "deca":
            from nice_core.prior3d.deca import load_deca_encoders, read_flame_model

            self.deca = load_deca_encoders(config.deca_model)
            if config.flame_model:
                read_flame_model(config.flame_model)  # checked now; the fit's shape loss reads it

    def model_files(self) -> dict[str, Path]:
        """The model files this backend reads (their SHA-256 go into the stage's attributes)."""
        from nice_core.prior3d.dlib_resnet import default_weights_path
        from nice_core.prior3d.topology import mesh_file

        files = {"canonical_mesh": mesh_file(), "identity_network": default_weights_path()}
        if self.config.backend == "deca":
            files["deca_model"] = Path(self.config.deca_model)
            if self.config.flame_model:
                files["flame_model"] = Path(self.config.flame_model)
        return files

    @property
    def network(self):
        if self._network is None:
            from nice_core.prior3d.dlib_resnet import load_dlib_face_resnet

            self._network = load_dlib_face_resnet()
        return self._network

    def _unwrapped(self, crops: np.ndarray, vertices: np.ndarray) -> tuple[Tensor, ...]:
        """``(images, verts, normals, visibility, colours)``: the crops as floats and unwrapped onto the UV
        layout through their vertices (what every per-frame quantity starts from)."""
        images = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
        verts = torch.from_numpy(np.ascontiguousarray(vertices, np.float32))
        points = texel_points(verts, self.raster)
        normals = texel_normals(verts, self.raster)
        visibility = texel_visibility(points, normals, self.crop_size)
        return images, verts, normals, visibility, unwrap(images, points, self.crop_size)

    @torch.no_grad()
    def detail_only(self, crops: np.ndarray, vertices: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`analyse`'s flat ``detail`` ``(B, T)`` and ``weight`` ``(B, T)`` alone, the same numbers
        without the lighting, albedo, shape and identity network: what the UV detail score reads."""
        _, _, _, visibility, colours = self._unwrapped(crops, vertices)
        detail = appearance.detail(colours, visibility, self.raster, self.config.detail_sigma)
        return {"detail": detail.numpy(), "weight": (visibility * self._skin).numpy()}

    @torch.no_grad()
    def analyse(self, crops: np.ndarray, vertices: np.ndarray) -> dict[str, np.ndarray]:
        """Per frame of ``(B, S, S, 3)`` ``uint8`` crops with ``(B, 468, 3)`` vertices: ``visibility_map``
        ``(B, U, U)`` in ``[0, 1]``, ``lighting`` ``(B, 9)``, ``albedo_code`` ``(B, A, A, 3)``, ``detail_map``
        ``(B, U, U)``, ``shape`` ``(B, 468, 3)``, ``embedding`` ``(B, 128)``, ``vertices``, and the flat
        ``detail``, ``albedo`` ``(B, 3, T)`` and ``weight`` (visibility on the skin) for statistics; with
        backend ``deca`` also ``deca`` (its codes, name -> ``(B, k)``) and ``deca_box`` ``(B, 3)``."""
        images, verts, normals, visibility, colours = self._unwrapped(crops, vertices)
        cfg, raster = self.config, self.raster
        weight = visibility * self._skin
        lighting = appearance.fit_lighting(colours, normals, weight)
        albedo = appearance.albedo(colours, lighting, normals, weight, raster, cfg.albedo_sigma)
        detail = appearance.detail(colours, visibility, raster, cfg.detail_sigma)
        embedding = self.network(identity_chips(images, self.crop_scale))
        extra = {}
        if self.deca is not None:
            codes, boxes = deca_codes(self.deca, images, verts)
            extra = {"deca": {name: code.numpy() for name, code in codes.items()}, "deca_box": boxes.numpy()}
        return extra | {
            "vertices": verts.numpy(),
            "visibility_map": raster.to_map(visibility),
            "lighting": lighting.numpy(),
            "albedo_code": pool_albedo(albedo, weight, raster).permute(0, 2, 3, 1).numpy(),
            "detail_map": raster.to_map(detail),
            "shape": np.stack([shape_code(v) for v in verts.numpy()]),
            "embedding": embedding.numpy(),
            "detail": detail.numpy(),
            "albedo": albedo.numpy(),
            "weight": weight.numpy(),
        }


@dataclass
class SourceStats:
    """The frames a source's static statistics are taken over (bounded: the stage adds at most
    ``aggregate_frames`` or ``identity_frames`` of them)."""

    frames: list[int] = field(default_factory=list)
    details: list[np.ndarray] = field(default_factory=list)
    albedos: list[np.ndarray] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    embeddings: list[np.ndarray] = field(default_factory=list)
    shapes: list[np.ndarray] = field(default_factory=list)
    deca: list[dict[str, np.ndarray]] = field(default_factory=list)

    def add(self, frame: int, out: dict[str, np.ndarray], k: int, shape: bool) -> None:
        """Frame ``frame``, row ``k`` of an :meth:`FrameAnalyser.analyse` result."""
        # Copies, not views: a view of row k keeps its whole batch's arrays alive, and with one pick per batch
        # the statistics would pin every batch of a long clip (the stage's memory grew with the clip).
        self.frames.append(frame)
        self.details.append(out["detail"][k].copy())
        self.albedos.append(out["albedo"][k].copy())
        self.weights.append(out["weight"][k].copy())
        self.embeddings.append(out["embedding"][k].copy())
        if shape:
            self.shapes.append(out["shape"][k].copy())
        if "deca" in out:
            self.deca.append({name: out["deca"][name][k].copy() for name in DECA_STATIC})

    def static_maps(self, raster: UVRaster) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(detail (U, U), albedo (U, U, 3), weight (U, U))``: weighted medians over the frames."""
        weights = np.stack(self.weights)
        detail, total = appearance.weighted_median(np.stack(self.details), weights)
        albedo = np.stack([appearance.weighted_median(np.stack([a[c] for a in self.albedos]), weights)[0]
                           for c in range(3)], axis=-1)
        return raster.to_map(detail), np.moveaxis(raster.to_map(albedo.T), 0, -1), raster.to_map(total)

    def mean_embedding(self) -> np.ndarray:
        return np.mean(np.stack(self.embeddings), axis=0).astype(np.float32)

    def deca_medians(self) -> dict[str, np.ndarray]:
        """The median of each of :data:`DECA_STATIC`'s codes over the frames (``{}`` without DECA codes)."""
        if not self.deca:
            return {}
        return {name: np.median(np.stack([codes[name] for codes in self.deca]), axis=0).astype(np.float32)
                for name in DECA_STATIC}
