"""The carrier's settings as plain dataclasses: the network's shape, the loss and the fit.

They import nothing heavy (no torch), so the workflow can check a ``carrier.fit`` override before any job
starts. :mod:`~nice_core.carrier.unet`, :mod:`~nice_core.carrier.loss` and :mod:`~nice_core.carrier.fit`
re-export them next to the code they configure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from nice_core.prior3d import DETAIL_SOURCES

__all__ = [
    "DEFAULT_TEXTURE_CHANNELS",
    "OPTIMIZERS",
    "OUTPUT_MODES",
    "PRECISIONS",
    "RUNTIME_FIELDS",
    "SCHEDULES",
    "S_HEADS",
    "STOPS",
    "FitConfig",
    "LossConfig",
    "UNetConfig",
    "check_fit_overrides",
    "with_overrides",
]

OUTPUT_MODES = ("direct", "residual")
S_HEADS = ("detached", "shared")
SCHEDULES = ("onecycle", "constant")
#: The identity texture's channels in the fit's default network (``docs/carrier.md``, "Wave 2").
DEFAULT_TEXTURE_CHANNELS = 8
OPTIMIZERS = ("adam", "adamw")
#: How a fit ends: its whole step budget, or its output's plateau (nice_core.carrier.plateau) within it.
STOPS = ("budget", "plateau")
#: The fit's arithmetic: float32, or bfloat16 autocast for the network (the loss stays float32).
PRECISIONS = ("fp32", "bf16")

#: FitConfig fields that may differ between a checkpoint and its resume (they change no result's meaning).
RUNTIME_FIELDS = ("device", "threads")


@dataclass(frozen=True)
class UNetConfig:
    """Shape of the carrier UNet.

    Attributes:
        base_channels: channels at full resolution; doubled per level.
        depth: number of 2x downsamplings; the input side must be a multiple of ``2 ** depth``.
        max_channels: cap on the channels of the deeper levels.
        output: ``"direct"`` or ``"residual"`` (see the module notes).
        s_min: soft lower bound on ``s``.
        s_head: ``"detached"`` or ``"shared"`` (see the module notes).
        texture_channels: channels of the identity texture (0: none, the network sees the target crop
            only, as in the paper). With ``C > 0`` the network also sees ``C`` channels of a learnt texture,
            sampled at each pixel's surface coordinates (:mod:`nice_core.carrier.surface`), and the mesh
            coverage: a place, shared by every frame, for the swap's static detail (see the module notes).
        texture_size: side of the texture, in texels over the crop's canonical face.
    """

    base_channels: int = 16
    depth: int = 4
    max_channels: int = 256
    output: str = "residual"
    s_min: float = -5.0
    s_head: str = "detached"
    texture_channels: int = 0
    texture_size: int = 256

    def __post_init__(self) -> None:
        if self.base_channels < 1 or self.depth < 1 or self.max_channels < self.base_channels:
            raise ValueError(f"need base_channels >= 1, depth >= 1, max_channels >= base_channels: {self}")
        if self.output not in OUTPUT_MODES:
            raise ValueError(f"output must be one of {OUTPUT_MODES}, got {self.output!r}")
        if self.s_head not in S_HEADS:
            raise ValueError(f"s_head must be one of {S_HEADS}, got {self.s_head!r}")
        if self.s_min >= 0:
            raise ValueError(f"s_min must be < 0, got {self.s_min}")
        if self.texture_channels < 0 or self.texture_size < 2:
            raise ValueError(f"need texture_channels >= 0 and texture_size >= 2, got {self.texture_channels}, "
                             f"{self.texture_size}")

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.depth

    def channels(self, level: int) -> int:
        return min(self.base_channels * 2**level, self.max_channels)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LossConfig:
    """Settings of :class:`CarrierLoss`.

    Attributes:
        l1_weight: weight of the photometric L1 term.
        perceptual_weight: weight of the perceptual term (0: no feature network is run).
        gradient_weight: weight of the image-gradient L1 term (0: off).
        uncertainty: use the aleatoric form ``D exp(-s) + s``; ``False``: plain ``D``.
        balanced: train with :func:`balanced_aleatoric_objective` (same optimum, scale-free gradients);
            the reported loss is still the aleatoric one.
        background: loss weight outside the dilated face mask, in ``[0, 1]``.
        dilate: dilation of the face mask, as a fraction of the crop side.
        vgg19: path of a torchvision-format VGG-19 state dict; ``None`` uses the mediapipe face features.
        albedo3d_weight: weight of ``L_albedo(Xo, Xt)`` (NICe Sec. 3.4.2; needs the 3D prior; 0: off).
        shape3d_weight: weight of ``L_shape(Xo, Xid)``, the identity-embedding distance (0: off).
        detail3d_weight: weight of ``L_detail(Xo, Xid)``, the static UV detail distance (0: off).
        detail3d_source: whose static detail ``L_detail`` pulls towards: ``proxy`` (the proxy aggregated in
            UV), ``identity`` (the identity input; the proxy for a self-swap) or ``both``.
    """

    l1_weight: float = 1.0
    perceptual_weight: float = 0.1
    gradient_weight: float = 0.0
    uncertainty: bool = True
    balanced: bool = True
    background: float = 0.1
    dilate: float = 0.04
    vgg19: str | None = None
    albedo3d_weight: float = 0.0
    shape3d_weight: float = 0.0
    detail3d_weight: float = 0.0
    detail3d_source: str = "proxy"

    def __post_init__(self) -> None:
        if min(self.l1_weight, self.perceptual_weight, self.gradient_weight, self.albedo3d_weight,
               self.shape3d_weight, self.detail3d_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.detail3d_source not in DETAIL_SOURCES:
            raise ValueError(f"detail3d_source must be one of {DETAIL_SOURCES}, got {self.detail3d_source!r}")
        if self.l1_weight + self.perceptual_weight + self.gradient_weight <= 0:
            raise ValueError("at least one loss term needs a positive weight")
        if not 0 <= self.background <= 1 or not 0 <= self.dilate < 0.5:
            raise ValueError("background must be in [0, 1] and dilate in [0, 0.5)")

    @property
    def uses_prior3d(self) -> bool:
        """Whether any 3D loss is on (the fit then needs the 3D prior stage's output)."""
        return max(self.albedo3d_weight, self.shape3d_weight, self.detail3d_weight) > 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_carrier`.

    Attributes:
        size: training (and inference) crop side; ``None`` = the store's crop size. A multiple of
            ``2 ** unet.depth`` and of 32 when the perceptual term is on.
        patch: train on random ``patch x patch`` windows of the ``size`` crops (one window per batch, its
            corner drawn from the data-order generator); ``None``: whole crops. The network is fully
            convolutional, so it still runs on whole crops; a window costs ``(patch / size)^2`` of a step.
            A ``patch`` at least the crop side means whole crops.
        epochs: passes over the frames; ``None``: from the ``steps`` budget.
        steps: optimizer-step budget that sets the passes when ``epochs`` is ``None``; also the longest
            epoch: a pass with more steps (a long clip) is split into checkpointed parts.
        min_epochs, max_epochs: bounds on the passes derived from ``steps``.
        batch_size: frames per step.
        lr: the peak (OneCycle) or constant learning rate.
        schedule: ``"onecycle"`` or ``"constant"``.
        pct_start: OneCycle's share of steps spent rising to ``lr``.
        div_factor: OneCycle starts at ``lr / div_factor``.
        final_div_factor: and ends at ``lr / div_factor / final_div_factor``.
        optimizer: ``"adam"`` or ``"adamw"``.
        weight_decay: AdamW's decoupled weight decay (Adam: L2 penalty).
        grad_clip: clip the global gradient norm to this before each step; ``None``: no clipping.
        warmup: share of the steps trained without the uncertainty term, in ``[0, 1)``.
        texture_lr_scale: the identity texture's learning rate over ``lr`` (with ``unet.texture_channels``).
        register_proxy: shift each proxy crop's face onto the target's before fitting
            (:mod:`nice_core.carrier.register`: undoes the swap's per-frame misalignment).
        stop: ``"budget"``: run the whole step budget; ``"plateau"``: end once the output stops changing
            (:mod:`nice_core.carrier.plateau`), the budget as the cap.
        plateau_every: optimizer steps between two plateau checks.
        plateau_change: the plateau's threshold: mean absolute change of the output on the probe frames
            between two checks, in 8-bit levels.
        plateau_patience: checks in a row below ``plateau_change`` that make the plateau.
        plateau_tail: the share of the budget the schedule's rest takes once the plateau is found, in ``(0, 1)``.
        precision: ``"fp32"``, or ``"bf16"``: the network's forward and backward under bfloat16 autocast (the
            loss, the optimizer and the weights stay float32); for GPUs with bf16 and CPUs with AMX.
        channels_last: keep the network's weights and activations in channels-last memory order (faster
            convolutions on some GPUs and CPUs; the same arithmetic).
        seed: seeds the initial weights and the data order.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; CUDA falls back to the CPU with a warning.
        threads: ``torch.set_num_threads`` during the fit; ``None`` leaves torch's choice.
        unet: the network's shape.
        loss: the loss's settings.
    """

    size: int | None = None
    patch: int | None = 128
    epochs: int | None = None
    steps: int = 2400
    min_epochs: int = 1
    max_epochs: int = 200
    batch_size: int = 1
    lr: float = 1e-3
    schedule: str = "onecycle"
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    optimizer: str = "adam"
    weight_decay: float = 0.0
    grad_clip: float | None = 10.0
    warmup: float = 0.3
    texture_lr_scale: float = 10.0
    register_proxy: bool = True
    stop: str = "budget"
    plateau_every: int = 100
    plateau_change: float = 0.25
    plateau_patience: int = 2
    plateau_tail: float = 0.1
    precision: str = "fp32"
    channels_last: bool = False
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(texture_channels=DEFAULT_TEXTURE_CHANNELS))
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if self.size is not None and self.size % self.unet.multiple:
            raise ValueError(f"size {self.size} must be a multiple of {self.unet.multiple} "
                             f"(unet depth {self.unet.depth})")
        if self.size is not None and self.loss.perceptual_weight > 0 and self.size % 32:
            raise ValueError(f"size {self.size} must be a multiple of 32 for the perceptual features")
        if self.patch is not None:
            if self.patch % self.unet.multiple or (self.loss.perceptual_weight > 0 and self.patch % 32):
                raise ValueError(f"patch {self.patch} must be a multiple of {self.unet.multiple} "
                                 "(and of 32 with the perceptual term)")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.steps < 1 or not 1 <= self.min_epochs <= self.max_epochs or self.batch_size < 1:
            raise ValueError("need steps >= 1, 1 <= min_epochs <= max_epochs and batch_size >= 1")
        if self.lr <= 0 or self.schedule not in SCHEDULES or self.optimizer not in OPTIMIZERS:
            raise ValueError(f"need lr > 0, schedule in {SCHEDULES}, optimizer in {OPTIMIZERS}")
        if not 0 < self.pct_start < 1 or self.div_factor <= 0 or self.final_div_factor <= 0:
            raise ValueError("need 0 < pct_start < 1 and positive div factors")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")
        if self.texture_lr_scale <= 0:
            raise ValueError(f"texture_lr_scale must be > 0, got {self.texture_lr_scale}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.stop not in STOPS:
            raise ValueError(f"stop must be one of {STOPS}, got {self.stop!r}")
        if self.plateau_every < 1 or self.plateau_change < 0 or self.plateau_patience < 1:
            raise ValueError("need plateau_every >= 1, plateau_change >= 0 and plateau_patience >= 1")
        if not 0 < self.plateau_tail < 1:
            raise ValueError(f"plateau_tail must be in (0, 1), got {self.plateau_tail}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FitConfig:
        """Inverse of :meth:`to_dict` (unknown keys are refused)."""
        data = dict(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FitConfig fields: {unknown}")
        if isinstance(data.get("unet"), dict):
            data["unet"] = UNetConfig(**data["unet"])
        if isinstance(data.get("loss"), dict):
            data["loss"] = LossConfig(**data["loss"])
        return cls(**data)

    def identity(self) -> dict:
        """The fields a resume must match (all but :data:`RUNTIME_FIELDS`)."""
        data = self.to_dict()
        for name in RUNTIME_FIELDS:
            data.pop(name)
        return data


def with_overrides(config: FitConfig, **changes) -> FitConfig:
    """``config`` with top-level fields and ``unet_*`` / ``loss_*`` nested fields replaced (for CLIs)."""
    unet = {k.removeprefix("unet_"): v for k, v in changes.items() if k.startswith("unet_")}
    loss = {k.removeprefix("loss_"): v for k, v in changes.items() if k.startswith("loss_")}
    top = {k: v for k, v in changes.items() if not k.startswith(("unet_", "loss_"))}
    return replace(config, unet=replace(config.unet, **unet), loss=replace(config.loss, **loss), **top)


def check_fit_overrides(overrides: dict, where: str = "carrier.fit") -> FitConfig:
    """The default :class:`FitConfig` with ``overrides`` (``with_overrides`` names), or one line naming them.

    The schema checks each override's type; this checks what only the dataclasses know (a ``size`` that
    is not a multiple of the network's ``2 ** depth``, ``min_epochs`` above ``max_epochs``, ...), so the
    workflow refuses such a config before any job starts.

    Raises:
        InputError: ``"<where>: <what is wrong>"``.
    """
    from nice_core.errors import InputError

    try:
        return with_overrides(FitConfig(), **overrides)
    except (TypeError, ValueError) as err:
        raise InputError(f"{where}: {err}") from None
