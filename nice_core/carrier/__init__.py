"""The neural identity carrier (NICe Sec. 3.2.1, 3.4.2): a per-video UNet fitted to map the target's crops to
the proxy's under an aleatoric-uncertainty loss, so its output keeps the swap but loses the flicker.

* :mod:`~nice_core.carrier.config`: :class:`UNetConfig`, :class:`LossConfig`, :class:`FitConfig` (no torch);
* :mod:`~nice_core.carrier.data`: the proxy crops cached in the store, and the ``(Xt, Xref, mask)`` dataset;
* :mod:`~nice_core.carrier.unet`: :class:`UNetConfig`, :class:`CarrierUNet`;
* :mod:`~nice_core.carrier.loss`: :class:`LossConfig`, :class:`CarrierLoss` (L1 + perceptual + gradient);
* :mod:`~nice_core.carrier.fit`: :class:`FitConfig`, :func:`fit_carrier` (checkpoints, resume);
* :mod:`~nice_core.carrier.checkpoint`: the safetensors checkpoint, :func:`load_carrier`;
* :mod:`~nice_core.carrier.infer`: :func:`run_carrier`;
* :mod:`~nice_core.carrier.perceptual`: the feature networks of the perceptual term.
"""

from nice_core.lazy import lazy_getattr

#: Public name -> the submodule that defines it. Loaded on first use (PEP 562), so importing the light
#: :mod:`~nice_core.carrier.config` (the workflow does, to check ``carrier.fit``) does not import torch.
_EXPORTS = {
    "CarrierDataset": "data",
    "CarrierLoss": "loss",
    "CarrierUNet": "unet",
    "CheckpointMismatchError": "fit",
    "FitConfig": "config",
    "LossConfig": "config",
    "UNetConfig": "config",
    "aleatoric_loss": "loss",
    "fit_carrier": "fit",
    "load_carrier": "checkpoint",
    "one_cycle_lr": "fit",
    "plan_fit": "fit",
    "prepare_proxy_crops": "data",
    "proxy_crops_ready": "data",
    "read_checkpoint": "checkpoint",
    "run_carrier": "infer",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
