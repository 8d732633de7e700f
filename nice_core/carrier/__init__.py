"""The neural identity carrier (NICe Sec. 3.2.1, 3.4.2): a per-video UNet fitted to map the target's crops to
the proxy's under an aleatoric-uncertainty loss, so its output keeps the swap but loses the flicker.

* :mod:`~nice_core.carrier.data`: the proxy crops cached in the store, and the ``(Xt, Xref, mask)`` dataset;
* :mod:`~nice_core.carrier.unet`: :class:`UNetConfig`, :class:`CarrierUNet`;
* :mod:`~nice_core.carrier.loss`: :class:`LossConfig`, :class:`CarrierLoss` (L1 + perceptual + gradient);
* :mod:`~nice_core.carrier.fit`: :class:`FitConfig`, :func:`fit_carrier` (checkpoints, resume);
* :mod:`~nice_core.carrier.checkpoint`: the safetensors checkpoint, :func:`load_carrier`;
* :mod:`~nice_core.carrier.infer`: :func:`run_carrier`;
* :mod:`~nice_core.carrier.quality`: crop-space stability, fidelity and detail measures;
* :mod:`~nice_core.carrier.perceptual`: the feature networks of the perceptual term.
"""

from nice_core.carrier.checkpoint import load_carrier, read_checkpoint
from nice_core.carrier.data import CarrierDataset, prepare_proxy_crops, proxy_crops_ready
from nice_core.carrier.fit import CheckpointMismatchError, FitConfig, fit_carrier, one_cycle_lr, plan_fit
from nice_core.carrier.infer import run_carrier
from nice_core.carrier.loss import CarrierLoss, LossConfig, aleatoric_loss
from nice_core.carrier.unet import CarrierUNet, UNetConfig

__all__ = [
    "CarrierDataset",
    "CarrierLoss",
    "CarrierUNet",
    "CheckpointMismatchError",
    "FitConfig",
    "LossConfig",
    "UNetConfig",
    "aleatoric_loss",
    "fit_carrier",
    "load_carrier",
    "one_cycle_lr",
    "plan_fit",
    "prepare_proxy_crops",
    "proxy_crops_ready",
    "read_checkpoint",
    "run_carrier",
]
