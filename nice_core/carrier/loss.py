"""The carrier's primary loss: a per-pixel distance ``D`` under the aleatoric-uncertainty model.

The NICe paper (Sec. 3.4.2) fits the carrier to the proxy with a perceptual error whose noise parameter
``sigma`` is learnt implicitly (Kendall & Gal, NeurIPS 2017). Here, per pixel, with ``s = log sigma^2``
predicted by the carrier::

    L = weighted_mean( D(Xo, Xref) * exp(-s) + s )

Where the proxy is unreliable (a flickering colour cast, a misaligned paste, a collapsed mouth), ``D``
stays large whatever the carrier does, and the carrier can raise ``s`` there instead of chasing the
fault: the optimal ``s`` for a fixed ``D`` is ``log D`` (derivative ``-D exp(-s) + 1 = 0``), so the
pixel's loss becomes ``1 + log D``, whose gradient ``1 / D`` fades on large errors. With
``uncertainty=False`` the output is fitted to the plain weighted mean of ``D`` (the ablation), while ``s``
is still fitted to the detached ``D``, so the sigma map stays a calibrated prediction either way.

**Training objective** (``balanced``, default on). Gradients come from
:func:`balanced_aleatoric_objective`, a surrogate with the same stationary points (for a fixed ``s`` the
same ``exp(-s)``-weighted fit of the output, for a fixed output ``s = log D``) whose output gradient is
divided by the batch's mean ``exp(-s)``. The plain form multiplies the output's gradient by about
``1 / mean(D)`` (30x and more) once ``s`` settles, and with Adam at OneCycle's peak of 1e-3 that diverged
on the benchmark within an epoch, with or without a warm-up. The value reported is always the aleatoric
loss above.

``D`` is a sum of per-pixel terms, each ``(B, 1, H, W)``:

* photometric: ``mean_c |Xo - Xref|``;
* perceptual: for each tapped layer ``k`` of a feature network ``phi``, the cosine distance
  ``1 - <phi_k(Xo), phi_k(Xref)> / (|phi_k(Xo)| |phi_k(Xref)|)`` over channels at each feature pixel
  (LPIPS-style channel normalisation: the raw activation scales differ by layer and network), upsampled
  bilinearly to ``H x W``, averaged over the layers. Default network: the mediapipe face-mesh CNN
  (:func:`~nice_core.carrier.perceptual.load_default_perceptual`), or VGG-19 from a user-supplied state
  dict (:func:`~nice_core.carrier.perceptual.load_vgg19`, the paper's choice);
* image gradient (optional): ``mean_c (|dx(Xo - Xref)| + |dy(Xo - Xref)|)`` with forward differences.

**Where the loss counts** (:func:`loss_weight`). The carrier's crop is pasted back through the face mask,
so only the face matters in the end, but a crop-wide fit keeps the network's output sensible at the mask's
feathered edge. The weight is ``background + (1 - background) * dilate(mask)``: 1 on the face mask grown
by ``dilate`` (a fraction of the crop side, default 4%, so the mask's jitter and the paste's feather are
inside), ``background`` (default 0.1) elsewhere; ``mask=None`` weighs the whole crop equally. Means are
``sum(w * l) / sum(w)``.

Pure functions do the math; :class:`CarrierLoss` holds the settings and the feature network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nice_core.carrier.config import LossConfig

__all__ = [
    "CarrierLoss",
    "LossConfig",
    "aleatoric_loss",
    "balanced_aleatoric_objective",
    "feature_distance",
    "gradient_distance",
    "loss_weight",
    "photometric_distance",
]


def photometric_distance(xo: Tensor, xref: Tensor) -> Tensor:
    """Per-pixel L1: ``(B, C, H, W)`` x2 -> ``(B, 1, H, W)``, the mean over channels of ``|xo - xref|``."""
    return (xo - xref).abs().mean(dim=1, keepdim=True)


def gradient_distance(xo: Tensor, xref: Tensor) -> Tensor:
    """Per-pixel image-gradient L1: ``(B, C, H, W)`` x2 -> ``(B, 1, H, W)``.

    ``mean_c (|dx e| + |dy e|)`` for ``e = xo - xref``, forward differences, zero in the last column/row.
    """
    e = xo - xref
    dx = F.pad(e[..., :, 1:] - e[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(e[..., 1:, :] - e[..., :-1, :], (0, 0, 0, 1))
    return (dx.abs() + dy.abs()).mean(dim=1, keepdim=True)


def feature_distance(feats_o: Sequence[Tensor], feats_ref: Sequence[Tensor], size: tuple[int, int],
                     eps: float = 1e-6) -> Tensor:
    """Multi-layer per-pixel cosine distance of feature maps, upsampled to ``size`` and averaged.

    Args:
        feats_o, feats_ref: matching lists of ``(B, C_k, H_k, W_k)`` feature maps.
        size: ``(H, W)`` of the output map.
        eps: added to the channel norms.

    Returns:
        ``(B, 1, H, W)`` in ``[0, 2]``: the mean over layers of ``1 - cos`` between the two feature vectors at
        each feature pixel, bilinearly upsampled.
    """
    if len(feats_o) != len(feats_ref) or not feats_o:
        raise ValueError("need the same, non-zero number of feature maps for both images")
    total = None
    for fo, fr in zip(feats_o, feats_ref):
        cos = (fo * fr).sum(dim=1, keepdim=True) / (fo.norm(dim=1, keepdim=True) * fr.norm(dim=1, keepdim=True) + eps)
        d = F.interpolate(1.0 - cos, size=size, mode="bilinear", align_corners=False)
        total = d if total is None else total + d
    return total / len(feats_o)


def loss_weight(mask: Tensor | None, shape: tuple[int, ...], dilate_px: int, background: float) -> Tensor | None:
    """The per-pixel loss weight ``background + (1 - background) * dilate(mask)``.

    Args:
        mask: ``(B, 1, H, W)`` face mask in ``[0, 1]``, or ``None`` (every pixel weighs 1: returns ``None``).
        shape: the loss map's shape, ``(B, 1, H, W)`` (checked against the mask's).
        dilate_px: radius of the grey dilation (a ``2 r + 1`` max filter), in pixels.
        background: weight where the dilated mask is 0.

    Returns:
        ``(B, 1, H, W)`` in ``[background, 1]``, or ``None``.
    """
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"mask {tuple(mask.shape)} does not match the loss map {tuple(shape)}")
    if dilate_px > 0:
        mask = F.max_pool2d(mask, 2 * dilate_px + 1, stride=1, padding=dilate_px)
    return background + (1.0 - background) * mask


def _wmean(x: Tensor, weight: Tensor | None) -> Tensor:
    if weight is None:
        return x.mean()
    return (x * weight).sum() / weight.sum().clamp_min(1e-12)


def aleatoric_loss(d: Tensor, s: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
    """The weighted mean of ``d * exp(-s) + s`` (or of ``d`` when ``s`` is ``None``).

    Args:
        d: ``(B, 1, H, W)`` per-pixel distance, ``>= 0``.
        s: ``(B, 1, H, W)`` log-variance ``log sigma^2``, or ``None`` for the plain mean of ``d``.
        weight: ``(B, 1, H, W)`` non-negative weights, or ``None`` (uniform).

    Returns:
        A scalar. With ``s = 0`` it equals the (weighted) mean of ``d``.
    """
    return _wmean(d if s is None else d * torch.exp(-s) + s, weight)


def balanced_aleatoric_objective(d: Tensor, s: Tensor, weight: Tensor | None = None) -> Tensor:
    """A surrogate of :func:`aleatoric_loss` with the same stationary points and scale-free gradients.

    ``wmean(d * sg(exp(-s))) / sg(wmean(exp(-s))) + wmean(sg(d) * exp(-s) + s)``, ``sg`` = stop-gradient.
    The first term gives the carrier's output the gradient of ``d`` weighted by ``exp(-s)`` relative to its
    mean (the aleatoric loss's output gradient divided by a positive per-batch constant); the second gives
    ``s`` exactly the aleatoric loss's gradient ``1 - d exp(-s)``. So for a fixed ``s`` the output's optimum
    is the same weighted fit, and for a fixed output ``s``'s optimum is ``log d``, as with the plain form;
    but the output's gradient keeps the scale of a plain ``d`` when ``s`` settles near ``log d`` (where the
    plain form multiplies it by about ``1 / mean(d)``, 30x or more, which made Adam diverge when the term was
    switched on after a warm-up). With ``s = 0`` its value is ``2 wmean(d)``, its gradient that of ``wmean(d)``
    plus the constant ``s`` gradient ``1 - d``.
    """
    w = torch.exp(-s)
    fit = _wmean(d * w.detach(), weight) / _wmean(w, weight).detach().clamp_min(1e-12)
    return fit + _wmean(d.detach() * w + s, weight)


class CarrierLoss(nn.Module):
    """The primary loss of the carrier (see the module notes).

    Args:
        config: the settings; default :class:`LossConfig()`.
        features: a feature network mapping ``(B, 3, H, W)`` in ``[0, 1]`` to a list of maps; default the
            mediapipe face features, or VGG-19 from ``config.vgg19``. Not needed when
            ``config.perceptual_weight`` is 0. It is frozen and kept out of this module's state dict.
    """

    def __init__(self, config: LossConfig | None = None, features: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config = config or LossConfig()
        if features is None and config.perceptual_weight > 0:
            from nice_core.carrier.perceptual import load_default_perceptual, load_vgg19

            features = load_vgg19(Path(config.vgg19)) if config.vgg19 else load_default_perceptual()
        self._features = [features] if features is not None else []  # a list: not a registered submodule

    @property
    def features(self) -> nn.Module | None:
        return self._features[0] if self._features else None

    def to(self, *args, **kwargs) -> CarrierLoss:  # the feature network is not a submodule; move it too
        if self._features:
            self._features[0] = self._features[0].to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def distance(self, xo: Tensor, xref: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``D(Xo, Xref)``: ``(B, 1, H, W)``, and each weighted term's map by name."""
        c = self.config
        parts: dict[str, Tensor] = {}
        if c.l1_weight > 0:
            parts["l1"] = c.l1_weight * photometric_distance(xo, xref)
        if c.perceptual_weight > 0:
            net = self.features
            assert net is not None
            with torch.no_grad():
                feats_ref = net(xref)
            parts["perceptual"] = c.perceptual_weight * feature_distance(net(xo), feats_ref, tuple(xo.shape[-2:]))
        if c.gradient_weight > 0:
            parts["gradient"] = c.gradient_weight * gradient_distance(xo, xref)
        d = torch.stack(list(parts.values())).sum(dim=0)
        return d, parts

    def forward(self, xo: Tensor, s: Tensor, xref: Tensor, mask: Tensor | None = None,
                uncertainty: bool | None = None) -> tuple[Tensor, dict[str, float]]:
        """The loss of one batch.

        Args:
            xo: ``(B, 3, H, W)`` carrier output in ``[0, 1]``.
            s: ``(B, 1, H, W)`` its log-variance.
            xref: ``(B, 3, H, W)`` proxy crops in ``[0, 1]``.
            mask: ``(B, 1, H, W)`` face masks in ``[0, 1]``, or ``None`` (the whole crop counts equally).
            uncertainty: override ``config.uncertainty`` (the fit's warm-up runs without it). Without it the
                output's gradient is that of the plain weighted mean of ``D``, and ``s`` is fitted to the
                detached ``D`` (so the sigma map stays a calibrated prediction either way).

        Returns:
            The scalar objective to minimise (the aleatoric loss, or its balanced surrogate with
            ``config.balanced``), and for logs the weighted means of each term of ``D``, of ``s`` and the
            aleatoric loss's value (``"loss"``).
        """
        c = self.config
        use_s = c.uncertainty if uncertainty is None else uncertainty
        d, parts = self.distance(xo, xref)
        weight = loss_weight(mask, tuple(d.shape), round(c.dilate * xo.shape[-1]), c.background)
        if not use_s:  # the output fits plain D; s still learns log D (a calibrated sigma map), detached
            loss = aleatoric_loss(d, None, weight)
            objective = loss + aleatoric_loss(d.detach(), s, weight)
        elif c.balanced:
            objective = balanced_aleatoric_objective(d, s, weight)
            with torch.no_grad():
                loss = aleatoric_loss(d, s, weight)
        else:
            objective = loss = aleatoric_loss(d, s, weight)
        with torch.no_grad():
            logs = {name: float(aleatoric_loss(m, None, weight)) for name, m in parts.items()}
            logs["s"] = float(aleatoric_loss(s, None, weight))
            logs["loss"] = float(loss)
        return objective, logs
