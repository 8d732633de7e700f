"""An invisible, correlation-detected watermark in the pixels of every video the pipeline writes.

Design (spread spectrum, detected by correlation over many frames):

* Three pseudo-random +-1 patterns of ``CELLS x CELLS`` cells, each cell ``CELL`` pixels square, so one tile
  is ``TILE = CELLS * CELL`` pixels. The patterns are fixed for the tool: pattern 0 (*sync*) says "made by
  nice-core"; patterns 1 and 2 carry the payload as cyclic shifts relative to the sync, 10 bits each
  (a 32 x 32-cell shift), 20 bits in all: a prefix of the SHA-256 of the output's inputs.
* The tiles repeat over the whole frame and the same overlay is added to every frame's luma (the same
  change on R, G and B, so chroma subsampling does not touch it). The overlay is a whole number of grey
  levels per pixel, chosen by a table from the three patterns' signs at that cell (:data:`LEVELS`): with
  the sync's sign ``s``, ``3 s`` where both data patterns agree with the sync, ``-s`` where both disagree,
  and ``s`` or ``2 s`` (about half the cells each, in a fixed order, as many as make the tile's mean
  square exactly :data:`MEAN_SQUARE`) where they split. Its correlation with the sync is about 1.25 grey
  levels and with each data pattern 1.0, for a mean square of 3.75: PSNR 42.4 dB against the unmarked
  frame for every payload (clipping at 0 and 255 only raises it).

  Why a table, not a sum of three equal patterns: a frame is whole grey levels, so the old sum
  ``1.1 (s + d1 + d2)`` was rounded to +-1 and +-3 anyway, and gave the sync only a third of the power
  (correlation 1.0 for a mean square of 3.0). The table gives the sync more of a slightly larger budget
  while each data pattern keeps the correlation it had, so the payload still decodes wherever the sync is
  found. Because the overlay is integer, embedding is two saturating ``uint8`` operations on a cached
  frame-sized overlay (it runs on every frame written).

  Not done, and why: texture masking (more amplitude in textured areas at the same PSNR) lowered the scores
  after H.264, because the detector's contrast normalisation (below) weights textured areas less, and
  8-pixel cells (which halve to 4) lost more to the picture's own low-frequency content than they gained
  after halving (both measured with ``bench/watermark.py``'s clips).
* Detection high-passes each frame's luma (minus a Gaussian blur of half a cell), divides it by the local
  contrast (so an edge or a textured patch counts no more than a flat wall: the mark is the same size
  everywhere, the picture's detail is not), and folds every pixel onto one tile by its position modulo the
  tile (whole frame, not only the whole tiles in it), summing over frames. The fold is then
  half-whitened (each frequency divided by the square root of its magnitude, which flattens the
  picture's strong low frequencies that the pattern shares) and cross-correlated with the sync by FFT over
  all cyclic shifts. A crop only moves the tiling's phase, which the cyclic search absorbs; a rescale
  changes the tile's size, so the detector also tries the frame resized by each factor in :data:`SCALES`
  (a half-size copy is found at 2.0). The score is a z-score: the peak's height over the spread of the
  other shifts of the same sub-cell phase (:func:`_zscore` says why); on unmarked footage it stays near 4
  (the largest of some 10^5 near-Gaussian values).

Limits: the picture, not the encoder, is the noise, and in a mostly still shot it is the same in every
frame, so the score grows little beyond a second or two of frames; what it needs is pixels. At 640x360
halved to 320x180 and at H.264 CRF 28, two seconds are enough (``docs/benchmarks.md``); much smaller
pictures (a 10%-cropped and halved 256x144 is about the smallest measured to pass) or a single heavily
compressed frame may not be.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CELL = 4
CELLS = 32
TILE = CELL * CELLS
#: Grey levels added, times the sync's sign, where both data patterns agree with the sync, where they split
#: (the two values, half the cells each) and where both disagree.
LEVELS = (3, (1, 2), -1)
#: The overlay's mean square (grey levels squared): PSNR 10 log10(255^2 / 3.75) = 42.4 dB before clipping.
MEAN_SQUARE = 3.75
#: Detection threshold on the sync z-score. Over the 128 x 128 shifts and all scales tried, the chance that
#: unmarked footage scores this high is far below one in a million (measured clean scores: 3.9 to 5.1).
DETECT_Z = 8.0
#: Rescale factors tried at detection (a video shrunk to half size is found at 2.0).
SCALES = (1.0, 2.0, 1.5, 4 / 3, 0.75, 0.5)
PAYLOAD_BITS = 20
#: The payload of the data-set parity mark: real footage that nice-core re-encoded, marked like its outputs so
#: a detector trained on both cannot key on the mark (:func:`nice_core.provenance.label.parity_label`); no
#: synthetic output carries it, and ``nice-core verify`` reports it as not synthetic.
PARITY_PAYLOAD = 0
_SEED = 0x4E494345  # "NICE": the tool's identity; other tools using this scheme would pick another seed
#: Detector: high-pass blur, contrast-normalisation blur (both in cells), clip, floor, whitening exponent.
_HIGHPASS_SIGMA = 0.5
_CONTRAST_SIGMA = 2.0
_CLIP = 3.0
_CONTRAST_FLOOR = 1.0
_WHITEN = 0.5


@lru_cache(maxsize=1)
def _patterns() -> np.ndarray:
    """``(3, TILE, TILE)`` float32 +-1 patterns (sync, data 1, data 2)."""
    rng = np.random.default_rng(_SEED)
    cells = rng.choice(np.array([-1.0, 1.0], np.float32), size=(3, CELLS, CELLS))
    return np.kron(cells, np.ones((CELL, CELL), np.float32))


@lru_cache(maxsize=1)
def _order() -> np.ndarray:
    """A fixed pseudo-random order of the ``CELLS x CELLS`` cells: split cells take the larger level in it."""
    return np.random.default_rng(_SEED + 1).permutation(CELLS * CELLS)


def payload_from_inputs(digests: list[str]) -> int:
    """The 20-bit payload: a prefix of the SHA-256 over the inputs' hex digests (sorted); never
    :data:`PARITY_PAYLOAD` (that one prefix in 2^20 becomes 1)."""
    digest = hashlib.sha256("".join(sorted(digests)).encode()).digest()
    return (int.from_bytes(digest[:3], "big") >> (24 - PAYLOAD_BITS)) or 1


def _shifts(payload: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two data patterns' cyclic shifts (in cells) that encode ``payload``."""
    if not 0 <= payload < 2**PAYLOAD_BITS:
        raise ValueError(f"payload must fit in {PAYLOAD_BITS} bits, got {payload}")
    high, low = payload >> 10, payload & 0x3FF
    return (high >> 5, high & 31), (low >> 5, low & 31)


@lru_cache(maxsize=64)
def _tile(payload: int) -> np.ndarray:
    """The ``(TILE, TILE)`` int16 overlay tile for ``payload`` (see :data:`LEVELS`).

    How many cells fall in each case depends a little on the payload, so the number of split cells that
    take the larger level is chosen to make the tile's mean square :data:`MEAN_SQUARE` (PSNR 42.4 dB)."""
    sync, data1, data2 = (p[::CELL, ::CELL] for p in _patterns())
    (a, b), (c, d) = _shifts(payload)
    agree = np.roll(data1, (a, b), axis=(0, 1)) * sync + np.roll(data2, (c, d), axis=(0, 1)) * sync  # 2, 0, -2
    both, (weak, strong), neither = LEVELS
    level = np.where(agree > 0, both, np.where(agree < 0, neither, weak)).astype(np.int16).ravel()
    split = np.flatnonzero(agree.ravel()[_order()] == 0)
    extra = (MEAN_SQUARE * CELLS * CELLS - float((level.astype(np.float64) ** 2).sum())) / (strong**2 - weak**2)
    level[_order()[split[:int(np.clip(round(extra), 0, len(split)))]]] = strong
    cells = sync * level.reshape(CELLS, CELLS)
    return np.kron(cells, np.ones((CELL, CELL), np.float32)).astype(np.int16)


@lru_cache(maxsize=8)
def overlay(height: int, width: int, payload: int) -> np.ndarray:
    """The ``(height, width)`` int16 luma overlay for ``payload`` (tiled from the top-left corner)."""
    reps = (-(-height // TILE), -(-width // TILE))
    return np.ascontiguousarray(np.tile(_tile(payload), reps)[:height, :width])


@lru_cache(maxsize=8)
def _planes(height: int, width: int, payload: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlay split into what to add and what to subtract, as ``(H, W, 3)`` uint8 planes."""
    mark = overlay(height, width, payload)
    up = np.repeat(np.maximum(mark, 0).astype(np.uint8)[..., None], 3, axis=2)
    down = np.repeat(np.maximum(-mark, 0).astype(np.uint8)[..., None], 3, axis=2)
    return up, down


def embed(frame: np.ndarray, payload: int) -> np.ndarray:
    """Watermark one ``(H, W, 3)`` ``uint8`` RGB frame (the same luma change on all three channels).

    Equal to ``clip(frame + overlay, 0, 255)``: saturating adds of the overlay's positive part, then
    subtracts of its negative part (no pixel has both)."""
    import cv2

    up, down = _planes(frame.shape[0], frame.shape[1], payload)
    return cv2.subtract(cv2.add(np.ascontiguousarray(frame), up), down)


def _detail(luma: np.ndarray) -> np.ndarray:
    """Cell-sized detail of ``luma`` in units of its local contrast, clipped (see the module notes)."""
    import cv2

    detail = luma - cv2.GaussianBlur(luma, (0, 0), CELL * _HIGHPASS_SIGMA)
    # The local contrast is smooth (a blur two cells wide), so it is computed at a quarter of the size.
    height, width = detail.shape
    energy = cv2.resize(detail * detail, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    energy = cv2.GaussianBlur(energy, (0, 0), CELL * _CONTRAST_SIGMA / 4)
    contrast = np.sqrt(cv2.resize(energy, (width, height), interpolation=cv2.INTER_LINEAR))
    return np.clip(detail / np.maximum(contrast, _CONTRAST_FLOOR), -_CLIP, _CLIP)


class Fold:
    """Accumulates contrast-normalised detail folded onto one tile (every pixel by its position modulo the
    tile), at one trial scale."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.sum = np.zeros((TILE, TILE), np.float64)
        self.count = np.zeros((TILE, TILE), np.float64)

    def add(self, frame: np.ndarray) -> None:
        import cv2

        luma = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)
        if self.scale != 1.0:
            luma = cv2.resize(luma, None, fx=self.scale, fy=self.scale,
                              interpolation=cv2.INTER_CUBIC if self.scale > 1 else cv2.INTER_AREA)
        height, width = luma.shape
        if height < CELL * 4 or width < CELL * 4:
            return
        detail = _detail(luma)
        rows, cols = -(-height // TILE) * TILE, -(-width // TILE) * TILE
        padded = np.zeros((rows, cols), np.float32)
        padded[:height, :width] = detail
        self.sum += padded.reshape(rows // TILE, TILE, cols // TILE, TILE).sum(axis=(0, 2))
        # How many pixels fell on each tile position: whole tiles, plus the partial row and column of tiles.
        ys = np.bincount(np.arange(height) % TILE, minlength=TILE)
        xs = np.bincount(np.arange(width) % TILE, minlength=TILE)
        self.count += np.outer(ys, xs)


def _correlate(fold: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """Cyclic cross-correlation of the half-whitened fold over all shifts (index = shift of the pattern
    within the fold)."""
    spectrum = np.fft.fft2(fold)
    spectrum /= np.abs(spectrum) ** _WHITEN + 1e-9
    return np.real(np.fft.ifft2(spectrum * np.conj(np.fft.fft2(pattern))))


def _zscore(corr: np.ndarray) -> tuple[float, tuple[int, int]]:
    """The best peak's z-score and position. Shifts are compared only with shifts of the same phase within a
    cell (the ``CELL x CELL`` classes of ``shift mod CELL``): block-coded footage (H.264's 4x4 and 8x8
    transforms sit on the same 4-pixel grid as the cells) correlates more at whole-cell shifts than between
    them, so one spread for all shifts would overrate whole-cell peaks on unmarked footage."""
    best = (-np.inf, (0, 0))
    for dy in range(CELL):
        for dx in range(CELL):
            phase = corr[dy::CELL, dx::CELL]
            peak = np.unravel_index(int(np.argmax(phase)), phase.shape)
            others = np.delete(phase.ravel(), np.ravel_multi_index(peak, phase.shape))
            z = float((phase[peak] - others.mean()) / (others.std() + 1e-12))
            if z > best[0]:
                best = (z, (dy + CELL * int(peak[0]), dx + CELL * int(peak[1])))
    return best


@dataclass(frozen=True)
class Detection:
    """Result of :func:`detect`: ``found`` when ``z`` passes :data:`DETECT_Z`."""

    found: bool
    z: float
    payload: int | None
    scale: float
    frames: int

    @property
    def payload_hex(self) -> str | None:
        return None if self.payload is None else f"{self.payload:05x}"


def detect_folds(folds: list[Fold], frames: int) -> Detection:
    """Decide from accumulated folds (one per trial scale)."""
    sync, data1, data2 = _patterns()
    best = None
    for fold in folds:
        if not fold.count.any():
            continue
        # Sum over sqrt(count): each position weighted by how many pixels it holds (a noise-equalised mean).
        folded = fold.sum / np.sqrt(np.maximum(fold.count, 1))
        z, shift = _zscore(_correlate(folded, sync))
        if best is None or z > best[0]:
            best = (z, shift, folded, fold.scale)
    if best is None:
        return Detection(False, 0.0, None, 1.0, frames)
    z, (sy, sx), folded, scale = best
    if z < DETECT_Z:
        return Detection(False, z, None, scale, frames)
    parts = []
    for data in (data1, data2):
        corr = _correlate(folded, data)
        # Only shifts that are whole cells away from the sync's position can carry data.
        grid = corr[(sy + CELL * np.arange(CELLS))[:, None] % TILE, (sx + CELL * np.arange(CELLS))[None] % TILE]
        a, b = np.unravel_index(int(np.argmax(grid)), grid.shape)
        parts.append((int(a) << 5) | int(b))
    return Detection(True, z, (parts[0] << 10) | parts[1], scale, frames)


def detect_frames(frames, scales: tuple[float, ...] = SCALES) -> Detection:
    """Detect the watermark in an iterable of RGB frames (for example a video's, sampled)."""
    folds = [Fold(s) for s in scales]
    count = 0
    for frame in frames:
        for fold in folds:
            fold.add(frame)
        count += 1
    return detect_folds(folds, count)
