"""The 3D prior stage's settings (``prior3d:`` in ``config.yaml``), importable without torch."""

from __future__ import annotations

from dataclasses import dataclass

from nice_core.config import default

__all__ = ["BACKENDS", "BACKEND_VERSIONS", "Prior3DConfig"]

BACKENDS = ("mesh", "deca")
BACKEND_VERSIONS = {"mesh": "mesh-1", "deca": "mesh-1+deca-1"}


@dataclass(frozen=True)
class Prior3DConfig:
    """Settings of the 3D prior stage (``prior3d:`` in ``config.yaml``)."""

    backend: str = default("prior3d.backend")
    uv_size: int = default("prior3d.uv_size")
    albedo_sigma: float = default("prior3d.albedo_sigma")
    detail_sigma: float = default("prior3d.detail_sigma")
    smooth_frames: float = default("prior3d.smooth_frames")
    aggregate_frames: int = default("prior3d.aggregate_frames")
    identity_frames: int = default("prior3d.identity_frames")
    min_identity_face: int = default("prior3d.min_identity_face")
    deca_model: str | None = default("prior3d.deca_model")
    flame_model: str | None = default("prior3d.flame_model")

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"prior3d backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "deca" and not self.deca_model:
            raise ValueError("prior3d backend deca needs deca_model: the path to your deca_model.tar")
        if self.uv_size % 8 or not 32 <= self.uv_size <= 512:
            raise ValueError(f"uv_size must be a multiple of 8 in [32, 512], got {self.uv_size}")
        if self.albedo_sigma <= 0 or self.detail_sigma <= 0 or self.smooth_frames < 0:
            raise ValueError("albedo_sigma and detail_sigma must be > 0, smooth_frames >= 0")
        if self.aggregate_frames < 1 or self.identity_frames < 1:
            raise ValueError("aggregate_frames and identity_frames must be >= 1")
