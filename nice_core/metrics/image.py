"""Per-frame image measures inside a face mask: detail (mean |Laplacian|), masked PSNR and SSIM."""

from __future__ import annotations

import numpy as np

#: SSIM constants (Wang et al. 2004) for 8-bit images, Gaussian window sigma 1.5.
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2


def face_region_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean ``(H, W)`` mask: the filled face-oval polygon of ``(478, 2+)`` landmarks."""
    import cv2

    from nice_core.face.landmarks import face_oval_indices

    mask = np.zeros(shape, np.uint8)
    polygon = np.asarray(landmarks)[list(face_oval_indices()), :2]
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask.astype(bool)


def detail(frame: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean absolute Laplacian of the grey frame inside ``mask`` (grey levels per pixel)."""
    import cv2

    if mask.sum() == 0:
        return None
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))[mask].mean())


#: PSNR of identical images is reported as this, so that means and JSON stay finite.
PSNR_CAP_DB = 100.0


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR in dB over the RGB values inside ``mask`` (8-bit peak), capped at :data:`PSNR_CAP_DB`."""
    if mask.sum() == 0:
        return None
    mse = float(((a.astype(np.float64) - b.astype(np.float64))[mask] ** 2).mean())
    return PSNR_CAP_DB if mse == 0 else float(min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse)))


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean SSIM (grey, Gaussian window sigma 1.5) over the pixels inside ``mask``."""
    import cv2

    if mask.sum() == 0:
        return None
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)

    def blur(img: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(img, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    ssim = ((2 * mx * my + SSIM_C1) * (2 * cxy + SSIM_C2)) / ((mx**2 + my**2 + SSIM_C1) * (vx + vy + SSIM_C2))
    return float(ssim[mask].mean())
