"""The carrier network: a plain UNet that maps a target crop to the carried crop and its log-variance.

One model family per file (timm style): :class:`UNetConfig` describes it, :class:`CarrierUNet` builds it,
:func:`carrier_head` is the pure function that turns the last layer's four channels into the outputs.

The architecture follows DVP's (Lei et al., NeurIPS 2020) and the NICe paper's carrier: a UNet without
normalisation layers (a batch of one frame is typical), LeakyReLU(0.2), two 3x3 convolutions per level,
2x2 max pooling down, bilinear upsampling + a 3x3 convolution up, skip connections by concatenation.
Channels double per level from ``base_channels`` up to ``max_channels``.

The head has four channels: three for the RGB output and one for ``s = log sigma^2``, the per-pixel
log-variance of the aleatoric-uncertainty loss (:mod:`nice_core.carrier.loss`). Two RGB parametrisations:

* ``"residual"`` (default): ``Xo = C(Xt + r)``, the network draws a change of the target. It starts at the
  identity, so the fine detail of ``Xt`` is there from the first step. The shared calibration note saw it
  revert to ``Xt`` when the uncertainty term counted from the first step; with the fit's warm-up (the plain
  loss for the first 30% of the steps) and the balanced objective it learns the edit: on the 120-frame
  camera-move benchmark it reached PSNR 34.4 dB to the clean edit (proxy 25.2, target 27.4 dB away) with
  detail 1.06 x the clean crops' (``docs/carrier.md``);
* ``"direct"``: ``Xo = C(0.5 + r)``, the network draws the whole crop. Same benchmark and budget: 34.0 dB
  but detail 0.44, over-smoothed: the proxy jitters by 1-2 px, and the fit of a jittering target is blurred.

``C`` is a straight-through clamp: the value is clamped to ``[0, 1]``, the gradient passes as if it were
not. Why not a sigmoid (or ``clamp(Xt + a tanh(r))``): 5% of the proxy-crop pixels of the sample are
exactly 0 (dark background), where an L1 loss pulls a sigmoid's logit toward minus infinity for ever; at
OneCycle's peak learning rate that drift saturated the whole output, its gradient became exactly zero and
the fit never recovered (4 of 9 fits of the 120-frame benchmark, direct and residual, with and without the
uncertainty term). With the straight-through clamp an output already at 0 has zero L1 gradient there, and
one pushed past the range is pulled back.

``s`` is bounded softly from below, ``s = s_min + softplus(raw - s_min)`` (about ``raw`` above ``s_min``),
i.e. ``sigma^2 >= exp(s_min)``: a floor at the noise level of 8-bit, compressed video (``exp(-5)``, an L1
of 1.7 grey levels). Without it the aleatoric loss is unbounded below: where the carrier fits the proxy
exactly (outside the swapped face, the proxy is the target) ``D -> 0``, ``s -> log D -> -inf``, and the
weight ``exp(-s)`` piles onto those pixels until the fit diverges (seen on the benchmark: ``s`` hit the old
bound of -10 and the output saturated). There is no upper bound: a large ``s`` only mutes a pixel.

**The identity texture** (``texture_channels``; the plain network has none, the fit's default,
:class:`~nice_core.carrier.fit.FitConfig`, uses 8). The network's input is the target crop and
``C`` channels of a learnt ``(C, T, T)`` texture (zeros at the start), sampled (``grid_sample``, bilinear)
at every pixel's surface coordinates, plus the mesh coverage. A swap's identity detail is fixed on the skin;
without the texture the network must recognise "30 px left of the nostril" from uniform skin to draw a mole
there, and on footage it was not tuned on it learnt neither the marks nor, after a diverged epoch, the
swap's tone (``docs/carrier.md``). The texture is shared by every frame, so it can hold only what the proxy
shows consistently: per-frame flicker averages out of it. Its learning rate is ``texture_lr_scale`` x the
network's (Adam, no weight decay).

**Where ``s`` comes from** (``s_head``). ``"detached"`` (default): a small branch (3x3 conv, LeakyReLU, 1x1
conv) on the last decoder features with the gradient stopped, so fitting ``s`` cannot pull the shared
layers away from the image. ``"shared"``: the fourth channel of the same 1x1 head as the RGB (the textbook
heteroscedastic set-up). Measured on the 120-frame benchmark at 128 px (480 steps, L1 only, no uncertainty
weighting, only ``s`` fitted to the detached distance): the weighted L1 after four epochs was 0.037 without
any ``s`` and 0.169 with a shared ``s``: ``s``'s gradient, the same sign on every pixel, dominates the
shared layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nice_core.carrier.config import OUTPUT_MODES, S_HEADS, UNetConfig

__all__ = ["OUTPUT_MODES", "S_HEADS", "CarrierUNet", "UNetConfig", "carrier_head", "straight_through_clamp"]


def carrier_head(raw: Tensor, xt: Tensor, output: str = "direct", s_min: float = -5.0) -> tuple[Tensor, Tensor]:
    """Turn the UNet's last four channels into the carried crop and its log-variance.

    Args:
        raw: ``(B, 4, H, W)`` unbounded head activations (RGB, then log-variance).
        xt: ``(B, 3, H, W)`` target crop in ``[0, 1]`` (used by ``"residual"``).
        output: ``"direct"`` or ``"residual"``.
        s_min: soft lower bound on ``s``.

    Returns:
        ``Xo`` ``(B, 3, H, W)`` in ``[0, 1]`` and ``s = log sigma^2`` ``(B, 1, H, W)``, ``> s_min``.
    """
    rgb, s = raw[:, :3], raw[:, 3:4]
    if output == "direct":
        y = 0.5 + rgb
    elif output == "residual":
        y = xt + rgb
    else:
        raise ValueError(f"output must be one of {OUTPUT_MODES}, got {output!r}")
    return straight_through_clamp(y), s_min + F.softplus(s - s_min)


def straight_through_clamp(y: Tensor) -> Tensor:
    """``y`` clamped to ``[0, 1]`` in the forward pass, the identity in the backward pass."""
    return y + (y.clamp(0.0, 1.0) - y).detach()


class _DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.2))


class _Up(nn.Module):
    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2))
        self.fuse = _DoubleConv(c_out + c_skip, c_out)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([self.reduce(x), skip], dim=1))


class CarrierUNet(nn.Module):
    """The carrier UNet (see the module notes).

    Args:
        config: its shape; default :class:`UNetConfig()` (16 base channels, 4 levels).

    Example:
        >>> net = CarrierUNet(UNetConfig(base_channels=8, depth=3))
        >>> xo, s = net(torch.rand(2, 3, 64, 64))
        >>> tuple(xo.shape), tuple(s.shape)
        ((2, 3, 64, 64), (2, 1, 64, 64))
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UNetConfig()
        ch = [config.channels(level) for level in range(config.depth + 1)]
        self.inc = _DoubleConv(3 + config.texture_channels + (1 if config.texture_channels else 0), ch[0])
        if config.texture_channels:
            # Zeros: at the start the texture adds nothing and the network is the plain carrier.
            self.texture = nn.Parameter(torch.zeros(1, config.texture_channels, config.texture_size,
                                                    config.texture_size))
        self.down = nn.ModuleList(_DoubleConv(ch[i], ch[i + 1]) for i in range(config.depth))
        self.up = nn.ModuleList(_Up(ch[i + 1], ch[i], ch[i]) for i in reversed(range(config.depth)))
        if config.s_head == "shared":
            self.head = nn.Conv2d(ch[0], 4, 1)
            s_last = self.head
        else:
            self.head = nn.Conv2d(ch[0], 3, 1)
            self.s_branch = nn.Sequential(nn.Conv2d(ch[0], ch[0], 3, padding=1), nn.LeakyReLU(0.2),
                                          nn.Conv2d(ch[0], 1, 1))
            s_last = self.s_branch[-1]
        nn.init.zeros_(self.head.bias)
        nn.init.zeros_(s_last.bias)
        with torch.no_grad():
            s_last.weight[-1:].mul_(0.1)  # s starts near 0: the loss starts as plain D

    @property
    def uses_surface(self) -> bool:
        """Whether :meth:`forward` needs surface coordinates (the texture is on)."""
        return self.config.texture_channels > 0

    def sample_texture(self, grid: Tensor, covered: Tensor) -> Tensor:
        """The texture at ``grid`` ``(B, H, W, 2)`` (``[-1, 1]``) and the coverage ``(B, 1, H, W)``: ``C + 1``
        channels.

        Outside the face mesh the grid is the pixel's own crop position (the crops are aligned, so that is
        still roughly a place on the head): the texture is sampled there too, so changes just past the
        target's outline (a wider jaw) have a place to be learnt, and the coverage channel tells the network
        which kind of coordinate it sees.
        """
        texture = self.texture.expand(grid.shape[0], -1, -1, -1)
        sampled = F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return torch.cat([sampled, covered], 1)

    def forward(self, xt: Tensor, grid: Tensor | None = None, covered: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """Carry a batch of target crops.

        Args:
            xt: ``(B, 3, H, W)`` RGB in ``[0, 1]``; ``H`` and ``W`` multiples of ``config.multiple``.
            grid, covered: the crops' surface coordinates ``(B, H, W, 2)`` in ``[-1, 1]`` and mesh coverage
                ``(B, 1, H, W)`` in ``{0, 1}`` (:meth:`SurfaceCoords.grid
                <nice_core.carrier.surface.SurfaceCoords.grid>`); required when :attr:`uses_surface`.

        Returns:
            ``Xo`` ``(B, 3, H, W)`` in ``[0, 1]`` and ``s = log sigma^2`` ``(B, 1, H, W)``.

        Raises:
            ValueError: wrong shape, or a side that is not a multiple of ``config.multiple``.
        """
        if xt.ndim != 4 or xt.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB crops, got shape {tuple(xt.shape)}")
        m = self.config.multiple
        if xt.shape[-2] % m or xt.shape[-1] % m:
            raise ValueError(f"height and width must be multiples of {m} (depth {self.config.depth}), "
                             f"got {tuple(xt.shape[-2:])}")
        if self.uses_surface:
            if grid is None or covered is None:
                raise ValueError("this carrier has an identity texture: pass the crops' surface grid and coverage")
            if grid.shape != (xt.shape[0], *xt.shape[-2:], 2) or covered.shape != (xt.shape[0], 1, *xt.shape[-2:]):
                raise ValueError(f"grid {tuple(grid.shape)} and covered {tuple(covered.shape)} do not match the "
                                 f"crops {tuple(xt.shape)}")
            h = self.inc(torch.cat([xt, self.sample_texture(grid, covered)], 1))
        else:
            h = self.inc(xt)
        skips = [h]
        for block in self.down:
            h = block(F.max_pool2d(h, 2))
            skips.append(h)
        skips.pop()
        for block in self.up:
            h = block(h, skips.pop())
        c = self.config
        raw = self.head(h) if c.s_head == "shared" else torch.cat([self.head(h), self.s_branch(h.detach())], 1)
        return carrier_head(raw, xt, c.output, c.s_min)
