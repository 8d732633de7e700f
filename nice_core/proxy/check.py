"""Check an external proxy video against its target before the carrier is fitted to it.

A proxy is a per-frame face swap of the target: the carrier learns ``target frame t -> proxy frame t``, so
the two must be the same clip, frame for frame. Swappers and re-encoders break that in a few typical ways,
each caught here with one :class:`~nice_core.errors.InputError` line, or recorded and corrected:

* a different frame rate: refused, both rates named;
* a different resolution (same aspect ratio): allowed and flagged ``rescale``; :func:`read_proxy_frame` and
  :func:`aligned_proxy_frames` resize proxy frames to the target size;
* a constant frame offset (frames dropped or repeated at the start): found from the background and
  corrected, or refused with ``correct_offset=False``;
* a frame count that the offset does not explain: refused, both counts named;
* a different video: refused.

**How the offset is found.** A face swap leaves everything away from the face (almost) unchanged, so both
videos are streamed once into small grey thumbnails (64 pixels wide, ``(N, 36, 64)`` floats for 16:9, in
grey levels 0-255). For every candidate offset ``d`` in ``[-max_offset, max_offset]`` a per-pixel error
map is the mean absolute difference between target thumbnail ``t`` and proxy thumbnail ``t + d`` over the
overlapping frames. Pixels that match at *no* offset (within ``tolerance``) are the edited region, the
face; the error curve is the mean over the other pixels, so the swap does not flatten it. The offset is
the curve's minimum (ties go to the offset nearest 0).

**When it is a match.** At the chosen offset a pixel matches if its mean absolute difference is within
``tolerance`` grey levels. Two shares must be high enough: the share of the frame that matches
(``matched_share``: a different video fails it), and the share of the target's *motion* that matches
(``motion_share``: each pixel weighted by how much it changes over the clip, its mean absolute deviation
from its temporal median). The second catches a different moment of the same shot: its static background
matches, but none of the moving parts do.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nice_core.config import default
from nice_core.errors import InputError
from nice_core.io.probe import VideoProbe, probe_video
from nice_core.io.reader import VideoReader

#: Width of the grey thumbnails the videos are compared on; the height keeps the target's aspect ratio.
THUMB_WIDTH = 64
#: Largest offset searched by default, in frames (half a second at 30 fps).
MAX_OFFSET = default("proxy.max_offset")
#: Mean absolute difference, in grey levels (0-255) on the thumbnails, within which a pixel matches.
#: A 64-pixel-wide thumbnail averages ~10x10 pixel blocks, so compression noise mostly cancels: a crf 23
#: re-encode of the sample differs by 0.4 on average, a crf 40 one (FF++ "c40") by 2.4, with every pixel
#: under 8. A swapped face differs by far more.
MATCH_TOLERANCE = 8.0
#: Share of the frame that must match at the chosen offset. A swap edits the face only: a filled ellipse
#: over the whole face of the close-up sample leaves 77% matching, a FF++ face is usually 5-25% of the
#: frame; test patterns or other footage match 0-50% (only a shared static background can match).
MIN_MATCHED_SHARE = 0.5
#: Share of the target's motion that must match at the chosen offset. The close-up sample with its whole
#: face covered keeps 49% (hair, outline and shoulders move with the head); a different moment of the
#: same shot keeps 1-3%.
MIN_MOTION_SHARE = 0.2
#: A nonzero offset is taken only if its error is this many times below the error at offset 0 (both plus
#: ERROR_FLOOR); otherwise offset 0 is assumed. On the sample: a 3-frame shift gives 8x, a 1-frame shift of
#: a crf 40 copy re-encoded at crf 40 1.24x, a 1-frame shift of its nearly still first 16 frames 1.34x.
#: Without a shift, heavy compression of a nearly still shot makes a drifting curve whose minimum can lie a
#: few frames off 0, at up to 1.08x (crf 45). A wrong call is not silent: a proxy of the right length
#: taken as offset, or an offset proxy taken as not, fails the frame-count check.
MIN_OFFSET_GAIN = 1.2
#: Added to errors before taking ratios, in grey levels: a bit-identical proxy has error 0.
ERROR_FLOOR = 0.25
#: Largest relative aspect-ratio difference that still counts as a rescale (odd sizes round to even ones).
ASPECT_TOLERANCE = 0.02
#: Frames per block when comparing thumbnails (bounds temporary memory on long videos).
_CHUNK = 256


@dataclass(frozen=True)
class ProxyCheck:
    """The result of :func:`check_proxy`: how proxy frames map onto target frames.

    ``frame_offset`` is ``d`` in "proxy frame ``t + d`` shows target frame ``t``": positive when the proxy
    is late (it has ``d`` extra frames at the start), negative when it is early (its first ``-d`` frames
    are missing, so target frames ``0 .. -d-1`` have no proxy frame; see :attr:`covered`).

    ``offsets``/``errors`` are the searched offsets and the error curve: mean absolute difference in grey
    levels (0-255) between the thumbnails, over the pixels that match at some offset. ``confidence`` is how
    many times larger the error is at the best other offset than at the chosen one (plus ERROR_FLOOR): well
    above 1 means a sharp minimum, about 1 a shot without enough motion to tell offsets apart. ``notes``
    are the one-line findings worth logging (offset corrected, rescale, ...).
    """

    target: VideoProbe
    proxy: VideoProbe
    frame_offset: int
    rescale: bool
    confidence: float
    matched_share: float
    motion_share: float
    offsets: tuple[int, ...]
    errors: tuple[float, ...]
    notes: tuple[str, ...] = ()

    @property
    def target_size(self) -> tuple[int, int]:
        """``(width, height)`` of the target; proxy frames are delivered at this size."""
        return self.target.width, self.target.height

    @property
    def proxy_size(self) -> tuple[int, int]:
        """``(width, height)`` of the proxy as stored."""
        return self.proxy.width, self.proxy.height

    @property
    def covered(self) -> range:
        """Target frame indices that have a proxy frame (all of them unless the proxy is early)."""
        return range(max(0, -self.frame_offset), min(self.target.n_frames, self.proxy.n_frames - self.frame_offset))

    def proxy_index(self, target_index: int) -> int:
        """The proxy frame index showing target frame ``target_index``.

        Raises:
            IndexError: the target frame has no proxy frame (outside :attr:`covered`).
        """
        if target_index not in self.covered:
            raise IndexError(f"target frame {target_index} has no proxy frame (only {_span(self.covered)})")
        return target_index + self.frame_offset

    def to_dict(self) -> dict:
        """JSON-ready dict (an infinite confidence becomes ``None``)."""
        data = asdict(self)
        data["target"], data["proxy"] = self.target.to_dict(), self.proxy.to_dict()
        data["confidence"] = self.confidence if math.isfinite(self.confidence) else None
        data["offsets"], data["errors"], data["notes"] = list(self.offsets), list(self.errors), list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ProxyCheck:
        """Inverse of :meth:`to_dict` (a ``proxy_check.json``)."""
        data = dict(data)
        data["target"], data["proxy"] = VideoProbe.from_dict(data["target"]), VideoProbe.from_dict(data["proxy"])
        data["confidence"] = math.inf if data.get("confidence") is None else data["confidence"]
        for key in ("offsets", "errors", "notes"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


def check_proxy(
    target: str | Path,
    proxy: str | Path,
    max_offset: int = MAX_OFFSET,
    correct_offset: bool = True,
    *,
    tolerance: float = MATCH_TOLERANCE,
    min_matched_share: float = MIN_MATCHED_SHARE,
    min_motion_share: float = MIN_MOTION_SHARE,
    min_offset_gain: float = MIN_OFFSET_GAIN,
    target_probe: VideoProbe | None = None,
    proxy_probe: VideoProbe | None = None,
) -> ProxyCheck:
    """Check that ``proxy`` is a frame-aligned edit of ``target``; find and correct a constant offset.

    Args:
        target: the original video.
        proxy: the per-frame swapped video made from it.
        max_offset: largest offset searched, in frames (also limited to half the shorter video).
        correct_offset: accept a proxy that is a constant number of frames late or early (recorded in the
            result and noted); ``False`` refuses it instead.
        tolerance: grey levels (0-255) within which a thumbnail pixel matches (see :data:`MATCH_TOLERANCE`).
        min_matched_share: share of the frame that must match, in [0, 1].
        min_motion_share: share of the target's motion that must match, in [0, 1].
        min_offset_gain: how much better than offset 0 a nonzero offset must fit to be taken.
        target_probe, proxy_probe: probes already computed (otherwise both files are probed here).

    Both videos are decoded once; only ``(N, h, 64)`` float thumbnails are kept.

    Raises:
        InputError: either file is unusable (see :func:`~nice_core.io.probe.probe_video`), the frame rates
            or aspect ratios differ, the proxy does not match the target, it is offset and
            ``correct_offset`` is false, or its frame count is not explained by the offset.
    """
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0, got {max_offset}")
    if not (0 <= min_matched_share <= 1 and 0 <= min_motion_share <= 1):
        raise ValueError("min_matched_share and min_motion_share must be in [0, 1]")
    target, proxy = Path(target), Path(proxy)
    tp = target_probe or probe_video(target)
    pp = proxy_probe or probe_video(proxy)
    rescale = _check_format(target, proxy, tp, pp)
    notes = [f"proxy is {pp.width}x{pp.height}, target {tp.width}x{tp.height}; proxy frames are resized to the "
             "target size"] if rescale else []

    size = (THUMB_WIDTH, max(1, round(THUMB_WIDTH * tp.height / tp.width)))
    with VideoReader(target, tp) as reader:
        thumbs_t = _thumbnails(reader, size)
    with VideoReader(proxy, pp) as reader:
        thumbs_p = _thumbnails(reader, size)
    n_t, n_p = len(thumbs_t), len(thumbs_p)
    limit = min(max_offset, min(n_t, n_p) // 2)  # every searched offset overlaps half the shorter video
    offsets = list(range(-limit, limit + 1))
    maps = _error_maps(thumbs_t, thumbs_p, offsets)
    matchable = maps.min(axis=0) <= tolerance
    pixels = matchable if matchable.mean() >= 0.05 else np.ones_like(matchable)  # else it fails the match test
    errors = maps[:, pixels].mean(axis=1)

    chosen, gain, unclear = _choose_offset(errors, offsets, min_offset_gain)
    if unclear:
        notes.append(f"no clear frame offset{unclear}; assuming 0")
    others = [errors[k] for k in range(len(offsets)) if k != chosen]
    confidence = (min(others) + ERROR_FLOOR) / (errors[chosen] + ERROR_FLOOR) if others else math.inf
    offset = offsets[chosen]

    activity = np.abs(thumbs_t - np.median(thumbs_t, axis=0)).mean(axis=0) + 1e-6
    matched = maps[chosen] <= tolerance
    matched_share = float(matched.mean())
    motion_share = float(activity[matched].sum() / activity.sum())
    if matched_share < min_matched_share or motion_share < min_motion_share:
        raise InputError(
            f"proxy does not match target: at frame offset {offset:+d} (best of {-limit:+d}..{limit:+d} searched)"
            f" only {matched_share:.0%} of the frame and {motion_share:.0%} of the target's motion match within "
            f"{tolerance:g} grey levels (need {min_matched_share:.0%} and {min_motion_share:.0%}): "
            f"{proxy} vs {target}"
        )
    notes += _offset_notes(target, proxy, offset, limit, max_offset, gain, unclear, correct_offset, n_t, n_p)
    return ProxyCheck(tp, pp, offset, rescale, float(confidence), matched_share, motion_share, tuple(offsets),
                      tuple(float(e) for e in errors), tuple(notes))


def _check_format(target: Path, proxy: Path, tp: VideoProbe, pp: VideoProbe) -> bool:
    """Refuse another frame rate or aspect ratio; return whether the proxy needs rescaling."""
    if tp.fps != pp.fps:
        raise InputError(f"proxy frame rate differs from the target's: {proxy} is {pp.fps} fps "
                         f"({float(pp.fps):.3f}), {target} is {tp.fps} fps ({float(tp.fps):.3f})")
    if abs(pp.width * tp.height / (pp.height * tp.width) - 1) > ASPECT_TOLERANCE:
        raise InputError(f"proxy aspect ratio differs from the target's: {proxy} is {pp.width}x{pp.height}, "
                         f"{target} is {tp.width}x{tp.height} (a crop or padding, not a rescale)")
    return (pp.width, pp.height) != (tp.width, tp.height)


def _choose_offset(errors: np.ndarray, offsets: list[int], min_offset_gain: float) -> tuple[int, float, str]:
    """The index of the offset taken, the best offset's gain over 0, and why 0 was kept ("" when it was not
    overruled): a nonzero offset must fit ``min_offset_gain`` times better than none."""
    best = min(range(len(offsets)), key=lambda k: (errors[k], abs(offsets[k])))
    zero = offsets.index(0)
    gain = (errors[zero] + ERROR_FLOOR) / (errors[best] + ERROR_FLOOR)
    if offsets[best] != 0 and gain < min_offset_gain:
        return zero, gain, f" (best {offsets[best]:+d} fits only {gain:.2f}x better than 0, too little motion to tell)"
    return best, gain, ""


def _offset_notes(target: Path, proxy: Path, offset: int, limit: int, max_offset: int, gain: float, unclear: str,
                  correct_offset: bool, n_t: int, n_p: int) -> list[str]:
    """Refuse an offset at the edge of the search, an offset not to be corrected, or a frame count the offset
    does not explain; otherwise the notes on what was corrected and which target frames have no proxy frame."""
    notes: list[str] = []
    if offset != 0 and abs(offset) == limit:
        hint = "raise max_offset" if limit == max_offset else "offsets are limited to half the shorter video"
        raise InputError(f"proxy best matches target at offset {offset:+d} frames, the edge of the searched range "
                         f"(+-{limit}); the true offset may be larger ({hint}): {proxy} vs {target}")
    where = f"{_frames(abs(offset))} {'late' if offset > 0 else 'early'}"
    if offset != 0:
        if not correct_offset:
            raise InputError(f"proxy is offset by {offset:+d} frames from target ({where}: proxy frame t{offset:+d} "
                             f"shows target frame t, {gain:.1f}x better fit than no offset): {proxy} vs {target}")
        notes.append(f"proxy is {where}; corrected (proxy frame t{offset:+d} shows target frame t)")
    if n_p != n_t + offset:
        covered = range(max(0, -offset), min(n_t, n_p - offset))
        if offset == 0 or len(covered) < 0.5 * n_t:
            because = f"with the proxy {where}" if offset else f"with no frame offset found{unclear}"
            raise InputError(f"proxy frame count does not match the target's: {proxy} has {n_p} frames, {target} "
                             f"has {n_t}; {because} the proxy should have {n_t + offset}"
                             + (f" (or at least cover half the target; it covers {len(covered)})" if offset else ""))
        # A constant offset with the proxy padded or trimmed to some length (what swappers write): use the
        # frames that overlap; the others have no proxy frame.
        missing = n_t - len(covered)
        notes.append(f"proxy has {n_p} frames {where}: target {_span(covered)} have a proxy frame, "
                     f"{missing} {'has' if missing == 1 else 'have'} none")
    if offset < 0 and n_p == n_t + offset:
        notes.append(f"target {_span(range(-offset))} {'has' if offset == -1 else 'have'} no proxy frame")
    return notes


def resize_to_target(frame: np.ndarray, check: ProxyCheck) -> np.ndarray:
    """Resize a ``(h, w, 3)`` ``uint8`` proxy frame to the target's size (unchanged if already there).

    ``cv2.INTER_AREA`` when shrinking (no aliasing), ``cv2.INTER_CUBIC`` when enlarging.
    """
    import cv2

    width, height = check.target_size
    if frame.shape[:2] == (height, width):
        return frame
    shrink = frame.shape[0] * frame.shape[1] > width * height
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def read_proxy_frame(reader: VideoReader, index: int, check: ProxyCheck) -> np.ndarray:
    """The proxy frame showing target frame ``index``, at the target's size.

    Args:
        reader: a reader on the checked proxy.
        index: target frame index, in :attr:`ProxyCheck.covered`.
        check: the result of :func:`check_proxy` for this proxy.

    Returns:
        ``(H, W, 3)`` ``uint8`` RGB, ``(H, W)`` being the target's size.

    Raises:
        IndexError: the target frame has no proxy frame.
    """
    _same_proxy(reader, check)
    return resize_to_target(reader[check.proxy_index(index)], check)


def aligned_proxy_frames(reader: VideoReader, check: ProxyCheck, start: int = 0,
                         stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(target_index, proxy_frame)`` in order for the target frames in ``[start, stop)`` that have one.

    Frames are decoded sequentially (one in memory at a time), offset-corrected and resized to the target
    size like :func:`read_proxy_frame`.
    """
    _same_proxy(reader, check)
    covered = check.covered
    first = max(start, covered.start)
    last = covered.stop if stop is None else min(stop, covered.stop)
    d = check.frame_offset
    for index, frame in reader.iter_frames(first + d, last + d):
        yield index - d, resize_to_target(frame, check)


def _same_proxy(reader: VideoReader, check: ProxyCheck) -> None:
    if len(reader) != check.proxy.n_frames or reader.shape != (check.proxy.height, check.proxy.width):
        raise ValueError(f"reader on {reader.path} is not the checked proxy {check.proxy.path} "
                         f"({len(reader)} frames {reader.shape}, expected {check.proxy.n_frames} frames "
                         f"{(check.proxy.height, check.proxy.width)})")


def _thumbnails(reader: VideoReader, size: tuple[int, int]) -> np.ndarray:
    """``(N, h, w)`` float32 grey thumbnails (0-255) of every frame, streamed."""
    import cv2

    out = np.empty((len(reader), size[1], size[0]), np.float32)
    for index, frame in reader.iter_frames():
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        out[index] = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return out


def _error_maps(thumbs_t: np.ndarray, thumbs_p: np.ndarray, offsets: list[int]) -> np.ndarray:
    """``(len(offsets), h, w)``: per pixel, mean |target[t] - proxy[t + d]| over the overlapping frames."""
    maps = np.empty((len(offsets), *thumbs_t.shape[1:]), np.float64)
    for k, d in enumerate(offsets):
        first, stop = max(0, -d), min(len(thumbs_t), len(thumbs_p) - d)
        total = np.zeros(thumbs_t.shape[1:], np.float64)
        for s in range(first, stop, _CHUNK):
            e = min(s + _CHUNK, stop)
            total += np.abs(thumbs_t[s:e] - thumbs_p[s + d:e + d]).sum(axis=0)
        maps[k] = total / (stop - first)
    return maps


def _span(frames: range) -> str:
    """``"frame 4"``, ``"frames 0-2"`` or ``"no frames"``."""
    if len(frames) == 1:
        return f"frame {frames.start}"
    return f"frames {frames.start}-{frames.stop - 1}" if len(frames) else "no frames"


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"
