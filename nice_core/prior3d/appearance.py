"""Appearance in UV space: lighting, albedo and static detail of an unwrapped face (NICe Sec. 3.2.2, 3.4.2).

Each function is pure torch on per-texel tensors (``(B, C, T)`` colours, ``(B, T)`` weights, see
:mod:`nice_core.prior3d.uv`), differentiable in the colours, so the carrier's 3D losses can use them on its
output. Colours are RGB in ``[0, 1]``.

* **Lighting**: second-order spherical harmonics of a white light (9 coefficients, Lambertian attenuation
  folded in), fitted per frame by weighted least squares to the visible skin's luminance under a
  constant-reflectance assumption (:func:`fit_lighting`). Its shading is scaled to a mean of 1 on the skin,
  so dividing it out keeps the skin's colour and brightness.
* **Albedo**: colour over shading, low-passed in UV (:func:`albedo`): the lighting-normalised, low-frequency
  reflectance the albedo loss compares (skin tone, not detail).
* **Detail**: the high-pass of UV log-brightness (:func:`detail`): log makes shading and reflectance add, so
  a high-pass removes the smooth shading and keeps marks, lines and texture.
* **Static detail**: a visibility-weighted median of per-frame detail over frames
  (:func:`weighted_median`): what stays while the pose, lighting and the proxy's flicker change.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from nice_core.prior3d.uv import UVRaster, texel_planes

__all__ = [
    "albedo",
    "detail",
    "fit_lighting",
    "luminance",
    "masked_blur",
    "sh_basis",
    "shading",
    "weighted_median",
]

#: Real spherical-harmonics normalisation constants of bands 0-2.
_SH = (0.282095, 0.488603, 1.092548, 0.315392, 0.546274)
#: RGB -> luminance (Rec. 601, the weights the rest of the pipeline uses).
_LUMA = (0.299, 0.587, 0.114)
#: Added before the log so black texels stay finite (about one 8-bit level).
LOG_EPS = 1.0 / 255.0


def sh_basis(normals: Tensor) -> Tensor:
    """The 9 second-order real spherical harmonics at unit ``normals`` ``(..., 3)`` -> ``(..., 9)``."""
    x, y, z = normals.unbind(-1)
    c0, c1, c2, c3, c4 = _SH
    return torch.stack([torch.full_like(x, c0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z,
                        c3 * (3 * z * z - 1), c2 * x * z, c4 * (x * x - y * y)], dim=-1)


def luminance(colours: Tensor) -> Tensor:
    """``(B, 3, T)`` RGB -> ``(B, T)`` luminance."""
    weights = torch.tensor(_LUMA, dtype=colours.dtype, device=colours.device)
    return (colours * weights[None, :, None]).sum(dim=1)


def fit_lighting(colours: Tensor, normals: Tensor, weights: Tensor, ridge: float = 1e-3) -> Tensor:
    """Per-frame SH lighting ``(B, 9)`` that explains the luminance of ``colours`` as the shading of a
    constant reflectance.

    The light is taken as white (one set of coefficients for all channels): the skin's colour then stays in
    the albedo, which is what the albedo loss compares (a coloured light cannot be told from skin tone
    anyway).

    Args:
        colours: ``(B, 3, T)`` unwrapped RGB in ``[0, 1]``.
        normals: ``(B, T, 3)`` unit texel normals.
        weights: ``(B, T)`` least-squares weights (visibility on the skin; 0 excludes a texel).
        ridge: Tikhonov weight on bands 1 and 2, relative to the weights' sum (keeps a frame that sees
            few texels from fitting wild lighting).

    Returns:
        Coefficients whose :func:`shading` has a weighted mean of 1 over the weighted texels.
    """
    basis = sh_basis(normals)  # (B, T, 9)
    w = weights.clamp_min(0)[..., None]
    eye = torch.eye(9, dtype=basis.dtype, device=basis.device)
    reg = torch.diag(torch.tensor([0.0] + [1.0] * 8, dtype=basis.dtype, device=basis.device))
    gram = (basis * w).transpose(1, 2) @ basis + ridge * w.sum(dim=1, keepdim=True) * reg + 1e-9 * eye
    rhs = (basis * w).transpose(1, 2) @ luminance(colours)[..., None]  # (B, 9, 1)
    coeffs = torch.linalg.solve(gram, rhs)[..., 0]
    mean = (shading(coeffs, normals)[:, 0] * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)
    return coeffs / mean.clamp_min(1e-6)[:, None]


def shading(lighting: Tensor, normals: Tensor) -> Tensor:
    """``(B, 1, T)`` shading of ``(B, T, 3)`` normals under ``(B, 9)`` SH lighting."""
    return (sh_basis(normals) @ lighting[..., None]).transpose(1, 2)


@lru_cache(maxsize=16)
def _gaussian_matrix(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(size, size)`` matrix ``M`` with ``M @ x`` the Gaussian blur of ``x`` along its first axis (zero
    outside). As a matrix product the separable blur costs two small GEMMs; a ``1 x k`` convolution of
    single-channel planes was 10x slower on the CPU (it dominated a fit step)."""
    positions = torch.arange(size, dtype=dtype, device=device)
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = positions[:, None] - positions[None, :]
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2) * (offsets.abs() <= radius)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=dtype, device=device) / sigma) ** 2)
    return kernel / taps.sum()


def masked_blur(values: Tensor, weights: Tensor, raster: UVRaster, sigma: float) -> Tensor:
    """Normalised Gaussian blur of per-texel values in the UV plane, counting only weighted texels.

    ``blur(v w) / blur(w)``: empty texels (outside the mesh, weight 0) neither darken nor spread into the
    result. Where no weight is within reach the result is 0.

    Args:
        values: ``(B, C, T)``.
        weights: ``(B, T)`` in ``[0, 1]``.
        sigma: Gaussian sigma in texels (> 0).

    Returns:
        ``(B, C, T)``.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    batch, channels, _ = values.shape
    w = weights[:, None].to(values.dtype)
    planes = texel_planes(torch.cat([values * w, w], dim=1), raster)
    matrix = _gaussian_matrix(raster.size, sigma, values.dtype, values.device)
    index = torch.from_numpy(raster.texels).to(values.device)
    planes = (matrix @ planes @ matrix.T).flatten(2)[..., index]
    return planes[:, :channels] / planes[:, channels:].clamp_min(1e-6)


def albedo(colours: Tensor, lighting: Tensor, normals: Tensor, weights: Tensor, raster: UVRaster,
           sigma: float) -> Tensor:
    """Low-frequency, lighting-normalised reflectance ``(B, 3, T)``: colour over shading, blurred.

    Args:
        colours: ``(B, 3, T)`` unwrapped RGB in ``[0, 1]``.
        lighting: ``(B, 9)`` (:func:`fit_lighting`; for the carrier's output, the target frame's).
        normals: ``(B, T, 3)``.
        weights: ``(B, T)`` visibility on the skin.
        sigma: the low-pass's sigma in texels.
    """
    ratio = colours / shading(lighting, normals).clamp_min(0.05)
    return masked_blur(ratio, weights, raster, sigma)


def detail(colours: Tensor, weights: Tensor, raster: UVRaster, sigma: float) -> Tensor:
    """High-pass of log-brightness ``(B, T)``: ``log(Y) - blur(log(Y))`` (0 means "as smooth as around it").

    ``Y`` is the plain mean of R, G and B, not luma: a loss on this detail then pulls the three channels
    alike. With Rec. 601 weights its gradient is five times stronger in green than in blue, and a carrier
    fitted with the detail loss painted green and magenta blotches around the eyes and nose (tune-move,
    ``docs/carrier.md``).
    """
    log_y = torch.log(colours.mean(dim=1).clamp_min(0) + LOG_EPS)[:, None]
    return (log_y - masked_blur(log_y, weights, raster, sigma))[:, 0]


def weighted_median(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per texel, the weighted median over frames, and the weight behind it.

    Args:
        values: ``(F, T)`` per-frame values.
        weights: ``(F, T)`` non-negative weights (0: the frame does not see the texel).

    Returns:
        ``(median, total)``, each ``(T,)`` ``float32``; the median is 0 where the total weight is 0.
    """
    values = np.asarray(values, np.float64)
    weights = np.clip(np.asarray(weights, np.float64), 0, None)
    if values.shape != weights.shape or values.ndim != 2:
        raise ValueError(f"need two (F, T) arrays of one shape, got {values.shape} and {weights.shape}")
    order = np.argsort(values, axis=0)
    v = np.take_along_axis(values, order, axis=0)
    w = np.take_along_axis(weights, order, axis=0)
    cumulative = np.cumsum(w, axis=0)
    total = cumulative[-1]
    pick = np.argmax(cumulative >= 0.5 * total[None], axis=0)
    median = np.where(total > 0, v[pick, np.arange(v.shape[1])], 0.0)
    return median.astype(np.float32), total.astype(np.float32)
