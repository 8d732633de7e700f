"""Re-compositing a refined video: the fitted carrier runs on every target crop and the result is pasted
back into the full-resolution target frames.

The target is streamed frame by frame next to :func:`~nice_core.carrier.run_carrier`'s outputs (both in
frame order), so memory does not grow with the clip. Each carried crop goes back through the store's
transform and the target's face mask (:func:`~nice_core.composite.paste.paste_back`); pixels outside the
mask, and whole frames without a face, are the target's own. The output keeps the target's frame count,
exact frame rate and size, copies its audio untouched and carries the synthetic-media label.

Paste modes (``CompositeConfig.paste``):

* ``"residual"`` (default): the carrier's change ``Xo - Xt`` is warped back and added to the frame. The
  carrier works at the store's crop size (256 px by default) while faces in 720p/1080p footage are often
  larger; replacing the face would resample it through the crop and blur it, whereas the residual keeps the
  target's detail finer than the crop (pores, hair, sharp edges) and changes what the carrier changed.
* ``"replace"``: the carried crop itself replaces the face (what a per-frame swapper's paste does).

With ``uncertainty_output`` a second, crop-sized video shows the carrier's predicted per-pixel standard
deviation ``sigma`` (mapped linearly, ``0 -> black`` and ``sigma_max -> white``; black for frames without a
face): bright where the carrier found the proxy unreliable.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nice_core.carrier.data import SWAP_REGION
from nice_core.carrier.region import store_paste_mask
from nice_core.composite.paste import paste_back
from nice_core.config import default
from nice_core.errors import InputError
from nice_core.io import EncodeOptions, VideoProbe, VideoReader, probe_video
from nice_core.io.writer import VideoWriter
from nice_core.progress import progress
from nice_core.provenance import synthetic_label
from nice_core.store import FaceStore

__all__ = ["PASTE_MODES", "CompositeConfig", "CompositeResult", "composite_video", "sigma_to_image"]

PASTE_MODES = ("residual", "replace")


@dataclass(frozen=True)
class CompositeConfig:
    """Settings of :func:`composite_video`.

    Attributes:
        paste: ``"residual"`` or ``"replace"`` (see the module notes).
        batch_size: crops per carrier forward pass.
        sigma_max: the ``sigma`` shown as white in the uncertainty video.
        swap_region: paste through the face mask grown by the swap region (where the proxy consistently
            differs from the target, :mod:`nice_core.carrier.region`), so changes of the outline are kept;
            off: the target's face mask only.
    """

    paste: str = default("composite.paste")
    batch_size: int = 8
    sigma_max: float = 0.25
    swap_region: bool = default("composite.swap_region")

    def __post_init__(self) -> None:
        if self.paste not in PASTE_MODES:
            raise ValueError(f"paste must be one of {PASTE_MODES}, got {self.paste!r}")
        if self.batch_size < 1 or self.sigma_max <= 0:
            raise ValueError(f"need batch_size >= 1 and sigma_max > 0, got {self.batch_size}, {self.sigma_max}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CompositeResult:
    output: Path
    uncertainty: Path | None
    n_frames: int
    frames_refined: int

    def summary(self) -> str:
        return f"{self.frames_refined}/{self.n_frames} frames refined -> {self.output}"


def sigma_to_image(sigma: np.ndarray, sigma_max: float = 0.25) -> np.ndarray:
    """``(S, S)`` float sigma map -> ``(S, S, 3)`` ``uint8`` grey image, ``sigma_max`` and above white."""
    grey = np.clip(np.asarray(sigma, dtype=np.float32) / sigma_max, 0.0, 1.0)
    return np.repeat(np.round(255 * grey).astype(np.uint8)[..., None], 3, axis=2)


def composite_video(target: str | Path, store_path: str | Path, model, output: str | Path, *,
                    size: int | None = None, config: CompositeConfig | None = None,
                    encode: EncodeOptions | None = None, uncertainty_output: str | Path | None = None,
                    label_inputs: dict[str, str | Path] | None = None, device: str | None = None,
                    probe: VideoProbe | None = None, show_progress: bool | None = None,
                    proxy_crops: str | Path | None = None) -> CompositeResult:
    """Write the refined video of ``target``.

    Args:
        target: the original video (its frames, fps, size and audio are kept).
        store_path: the target's ``face.h5`` (transforms, crops and masks).
        model: the fitted :class:`~nice_core.carrier.CarrierUNet`.
        output: the refined video to write (atomically; an input is never overwritten).
        size: the side the carrier runs at (the fit's ``size``); ``None`` = the store's crop size.
        config: paste mode and batch size.
        encode: codec and label options.
        uncertainty_output: also write the sigma maps here.
        label_inputs: role -> path, hashed into the synthetic-media label (the target is always added).
        device: where the carrier runs (default: the model's device).
        probe: ``target``'s probe, when the caller has it (otherwise it is probed here).
        show_progress: progress bar (default: when stderr is a terminal).
        proxy_crops: the fit's proxy-crop cache, whose swap region grows the paste mask
            (``composite.swap_region``); default beside the store.

    Raises:
        InputError: the store does not belong to ``target`` (another frame count or size).
    """
    from nice_core.carrier.infer import run_carrier

    config = config or CompositeConfig()
    show = sys.stderr.isatty() if show_progress is None else show_progress
    target, output = Path(target), Path(output)
    probe = probe or probe_video(target)
    inputs = {"target": target, **(label_inputs or {})}
    refined = 0
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(FaceStore.open(store_path))
        if store.n_frames != probe.n_frames or store.json_attr("probe").get("width") != probe.width:
            raise InputError(f"{store_path} was not made from {target} ({store.n_frames} frames in the store, "
                             f"{probe.n_frames} in the video)")
        transforms = store["transforms"][:]
        region = _swap_region(store_path, proxy_crops) if config.swap_region else None
        reader = stack.enter_context(VideoReader(target, probe))
        writer = stack.enter_context(VideoWriter(output, probe.width, probe.height, probe.fps, audio_from=target,
                                                 encode=encode, label=synthetic_label(inputs, encode=encode),
                                                 protect=(target, store_path)))
        sigma_writer = None
        if uncertainty_output is not None:
            side = store.crop_size
            sigma_writer = stack.enter_context(VideoWriter(
                uncertainty_output, side, side, probe.fps, encode=encode,
                label=synthetic_label(inputs, "carrier uncertainty map of a face manipulation", encode),
                protect=(target, store_path, output)))
        carried = run_carrier(model, store, size, batch_size=config.batch_size, device=device)
        frames = progress(zip(reader.iter_frames(), carried), total=probe.n_frames, desc="composite", enabled=show)
        for (index, frame), (carried_index, crop, sigma) in frames:
            if index != carried_index:  # both stream in frame order; a mismatch is a bug, not bad input
                raise RuntimeError(f"frame {index} paired with carrier output {carried_index}")
            if crop is not None:
                original = store.crop(index) if config.paste == "residual" else None
                mask = store_paste_mask(store, index, region, transforms[index])
                frame = paste_back(frame, crop, mask, transforms[index], original_crop=original)
                refined += 1
            writer.write(frame)
            if sigma_writer is not None:
                side = store.crop_size
                sigma_writer.write(sigma_to_image(sigma, config.sigma_max) if sigma is not None
                                   else np.zeros((side, side, 3), np.uint8))
    return CompositeResult(output, Path(uncertainty_output) if uncertainty_output else None, probe.n_frames, refined)


def _swap_region(store_path: str | Path, proxy_crops: str | Path | None):
    """The swap region the fit measured (:mod:`nice_core.carrier.region`), or ``None`` without a cache."""
    import h5py

    from nice_core.carrier.data import default_proxy_crops

    path = Path(proxy_crops) if proxy_crops is not None else default_proxy_crops(store_path)
    if not path.is_file():
        return None
    with h5py.File(path, "r") as h5:
        return h5[SWAP_REGION][:] if SWAP_REGION in h5 else None

