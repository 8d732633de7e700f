"""Running a fitted carrier over a video's crops.

The carrier takes only the target crop (NICe Sec. 3.2.1: at inference the target video goes in), so every
frame with a face gets an output, also frames the proxy did not cover. Crops are read from the store in
frame order, a batch at a time (bounded memory), resized to the carrier's ``size`` with ``INTER_AREA`` if
it is smaller than the store's crops, and the outputs resized back to ``output_size`` (default: the store's
crop size, so they paste back with the store's transforms and masks) with ``INTER_CUBIC``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from nice_core.carrier.data import to_tensor
from nice_core.carrier.surface import SurfaceCoords
from nice_core.carrier.unet import CarrierUNet
from nice_core.store import FaceStore

__all__ = ["run_carrier"]


def _resize(image: np.ndarray, size: int, interpolation: int) -> np.ndarray:
    import cv2

    if image.shape[0] == size:
        return image
    return cv2.resize(image, (size, size), interpolation=interpolation)


def run_carrier(model: CarrierUNet, store: FaceStore | str | Path, size: int | None = None, *, batch_size: int = 8,
                device: str | torch.device | None = None, output_size: int | None = None,
                ) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None]]:
    """Carry every frame's crop.

    Args:
        model: the fitted carrier.
        store: the video's store, open or a path.
        size: the side the carrier runs at (the fit's ``size``); ``None`` = the store's crop size.
        batch_size: crops per forward pass.
        device: where to run; default the model's device.
        output_size: side of the returned crops; default the store's crop size.

    Yields:
        For every frame in order, ``(index, crop, sigma)``: ``crop`` ``(S, S, 3)`` ``uint8`` RGB and ``sigma``
        ``(S, S)`` ``float32``, the predicted per-pixel standard deviation ``exp(s / 2)`` of the loss's
        distance (``S = output_size``), or ``(index, None, None)`` for a frame without a face.
    """
    import cv2

    with contextlib.ExitStack() as stack:
        if not isinstance(store, FaceStore):
            store = stack.enter_context(FaceStore.open(store))
        crop_size = store.crop_size
        size = int(size or crop_size)
        out_size = int(output_size or crop_size)
        has_face = store["has_face"][:]
        device = torch.device(device) if device is not None else next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            pending: list[int] = []
            surface = None
            for index in range(store.n_frames + 1):
                if index < store.n_frames and has_face[index]:
                    pending.append(index)
                    if len(pending) < batch_size:
                        continue
                if pending:
                    crops = [_resize(store.crop(i), size, cv2.INTER_AREA) for i in pending]
                    grid = covered = None
                    if model.uses_surface:
                        if surface is None:
                            surface = SurfaceCoords.from_store(store)
                        pairs = [surface.grid(i, size) for i in pending]
                        grid = torch.from_numpy(np.stack([g for g, _ in pairs])).to(device)
                        covered = torch.from_numpy(np.stack([c for _, c in pairs]))[:, None].to(device)
                    with torch.inference_mode():
                        xo, s = model(to_tensor(crops).to(device), grid, covered)
                    rgb = (xo.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                    sigma = torch.exp(0.5 * s[:, 0]).float().cpu().numpy()
                    for k, i in enumerate(pending):
                        yield i, _resize(rgb[k], out_size, cv2.INTER_CUBIC), _resize(sigma[k], out_size,
                                                                                      cv2.INTER_LINEAR)
                    pending = []
                if index < store.n_frames and not has_face[index]:
                    yield index, None, None
        finally:
            model.train(was_training)
