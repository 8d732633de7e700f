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


def laplacian_magnitude(frame: np.ndarray) -> np.ndarray:
    """``|Laplacian|`` (OpenCV's 3x3 aperture) of the grey ``(H, W, 3)`` ``uint8`` RGB frame, ``(H, W)``
    float32 in grey levels: the per-pixel term of :func:`detail`."""
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))


def detail(frame: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean absolute Laplacian of the grey frame inside ``mask`` (grey levels per pixel)."""
    if mask.sum() == 0:
        return None
    return float(laplacian_magnitude(frame)[mask].mean())


#: PSNR of identical images is reported as this, so that means and JSON stay finite.
PSNR_CAP_DB = 100.0


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error of 8-bit values, capped at :data:`PSNR_CAP_DB`."""
    return PSNR_CAP_DB if mse == 0 else float(min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse)))


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR in dB over the RGB values inside ``mask`` (8-bit peak), capped at :data:`PSNR_CAP_DB`."""
    if mask.sum() == 0:
        return None
    return psnr_from_mse(float(((a.astype(np.float64) - b.astype(np.float64))[mask] ** 2).mean()))


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


#: Scale of the fine structure (Gaussian sigma in pixels of the frame) for :func:`fine_structure`.
FINE_SIGMA_PX = 2.0
#: The inner face is the face oval shrunk to this share about its centroid; the ring is the rest of the
#: oval grown by :data:`OUTLINE_GROW` (swaps change the outline, so the ring reaches past the target's oval).
INNER_SHARE = 0.75
OUTLINE_GROW = 1.08


def face_regions(landmarks: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Boolean ``(H, W)`` masks ``face`` (the oval grown by :data:`OUTLINE_GROW`), ``inner`` and ``ring``.

    ``inner`` is the face oval of ``(478, 2+)`` landmarks shrunk to :data:`INNER_SHARE` about its centroid;
    ``ring`` is ``face`` without ``inner``: the band where outline changes of a swap show.
    """
    import cv2

    from nice_core.face.landmarks import face_oval_indices

    polygon = np.asarray(landmarks)[list(face_oval_indices()), :2].astype(np.float64)
    centre = polygon.mean(0)

    def fill(scale: float) -> np.ndarray:
        mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(mask, [np.round(centre + (polygon - centre) * scale).astype(np.int32)], 1)
        return mask.astype(bool)

    face, inner = fill(OUTLINE_GROW), fill(INNER_SHARE)
    return {"face": face, "inner": inner, "ring": face & ~inner}


def fine_structure(change: np.ndarray, sigma: float = FINE_SIGMA_PX) -> np.ndarray:
    """The fine part of a grey change image ``(H, W)`` float: itself minus its Gaussian blur (``sigma`` px)."""
    import cv2

    return change - cv2.GaussianBlur(change, (0, 0), sigma)


def grey(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` float32 luma (BT.601), grey levels."""
    return frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def fine_transfer_terms(output: np.ndarray, reference: np.ndarray, target: np.ndarray,
                        mask: np.ndarray) -> tuple[float, float] | None:
    """One frame's terms of the fine-detail transfer score: ``(<f(O - X), f(G - X)>, <f(G - X), f(G - X)>)``.

    ``f`` is :func:`fine_structure` of the luma change, ``O`` the output, ``G`` the reference (the clean
    swap), ``X`` the target, sums over ``mask``. The score of a clip is the sum of the first terms over the
    sum of the second (:func:`fine_detail_transfer`); frames are pooled so frames with little fine change
    weigh little. ``None`` when the mask is empty.
    """
    if mask.sum() == 0:
        return None
    x = grey(target)
    wanted = fine_structure(grey(reference) - x)[mask].astype(np.float64)
    got = fine_structure(grey(output) - x)[mask].astype(np.float64)
    return float(got @ wanted), float(wanted @ wanted)


def fine_detail_transfer(terms: list[tuple[float, float] | None]) -> float | None:
    """Share of the reference's fine change that the output reproduces, pooled over frames.

    The least-squares coefficient of the output's fine change on the reference's: 1 = all of it (the
    output has the reference's fine structure), 0 = none (the output's fine structure is the target's, or
    unrelated to the change). Misplaced detail counts only as far as it overlaps; values can exceed 1
    (exaggerated) or go below 0 (the opposite change). ``None`` if the reference changes nothing fine.
    """
    kept = [t for t in terms if t is not None]
    energy = sum(t[1] for t in kept)
    return None if energy <= 0 else float(sum(t[0] for t in kept) / energy)
