"""The chain, defined once: the stages one video goes through, in order, and the files each reads and writes.

Every way of running the pipeline follows this: the workflow's rules (one per stage, ``rules/*.smk``, their
paths from :class:`WorkFiles` through ``rules/common.smk``), ``nice-core refine`` (:mod:`nice_core.refine`)
and ``nice-core demo`` (:mod:`nice_core.demo`). A stage's work files live in the video's work folder
(``results/work/<video>/`` in the workflow, ``.<output>.work/`` for refine, ``<out>/work/`` for the demo),
and their names are written here only. Adding a stage is: a :class:`Stage` in :data:`CHAIN`, the names of
the files it writes in :class:`WorkFiles`, its library function and ``nice-core`` command, and its rule.

Pure Python, no imports beyond the standard library: the workflow reads this while it builds the DAG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHAIN", "INPUTS", "TARGET_FILES", "Stage", "WorkFiles", "stage"]

#: What a video brings to the chain (given, not made by a stage): the target clip, the identity (a still
#: or clip of the person swapped in; the target itself for a self-swap), and optionally a given proxy and
#: a clean reference (benchmarks).
INPUTS = ("target", "identity", "proxy", "reference")
#: The work files that depend on the target video alone. Where several videos share a target (FF++: one
#: original, four or five methods), they are made once, in the target's own folder, and read by all.
TARGET_FILES = ("probe", "audio", "store", "preview", "motion")


@dataclass(frozen=True)
class WorkFiles:
    """The files the stages leave in one video's work folder ``root``; the :data:`TARGET_FILES` in
    ``target_root`` when given (the workflow's shared folder of the video's target), else in ``root``."""

    root: Path
    target_root: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "target_root", Path(self.target_root or self.root))

    @property
    def probe(self) -> Path:
        """The target's probe (frame count, exact rate, size, rotation), JSON."""
        return self.target_root / "probe.json"

    @property
    def audio(self) -> Path:
        """The target's first audio stream, stream-copied into Matroska (absent when it has none)."""
        return self.target_root / "audio.mka"

    @property
    def store(self) -> Path:
        """The face store (HDF5): landmarks, alignment, crops, masks, pose; only the tracker writes it."""
        return self.target_root / "face.h5"

    @property
    def preview(self) -> Path:
        """The tracking preview video (optional)."""
        return self.target_root / "preview.mp4"

    @property
    def motion(self) -> Path:
        """The target's optical flow for e_stab (HDF5, :mod:`nice_core.metrics.motion`), read by every
        evaluation of the target; the workflow removes it once they are done."""
        return self.target_root / "motion.h5"

    @property
    def proxy(self) -> Path:
        """A generated proxy (a given one stays where it is)."""
        return self.root / "proxy.mp4"

    @property
    def proxy_check(self) -> Path:
        """The proxy check: frame offset, rescale, notes (JSON)."""
        return self.root / "proxy_check.json"

    @property
    def prior3d(self) -> Path:
        """The 3D prior (HDF5): per-frame UV geometry, lighting, albedo, detail, shape, identity embedding,
        and the identity's static statistics."""
        return self.root / "prior3d.h5"

    @property
    def proxy_crops(self) -> Path:
        """The carrier's training cache (HDF5): the proxy's crops on the target's alignment, the swap region
        (the composite's paste mask grows by it). Its own file: the tracking store is only read."""
        return self.root / "proxy_crops.h5"

    @property
    def checkpoints(self) -> Path:
        """The carrier fit's per-epoch checkpoints (a fit resumes from them)."""
        return self.root / "checkpoint"

    @property
    def carrier(self) -> Path:
        """The fitted carrier's weights (safetensors, with its config and identity)."""
        return self.root / "carrier.safetensors"

    @property
    def metrics(self) -> Path:
        """``nice-core eval``'s metrics of the refined video, with the proxy's alongside (JSON)."""
        return self.root / "metrics.json"

    @property
    def provenance(self) -> Path:
        """The video's provenance record: inputs and results with their SHA-256, settings, software."""
        return self.root / "provenance.json"


@dataclass(frozen=True)
class Stage:
    """One step of the chain.

    Attributes:
        name: the workflow rule's name.
        command: the ``nice-core`` command that runs it on one video.
        reads: what it needs: :data:`INPUTS` names, :class:`WorkFiles` names, or ``refined``.
        writes: what it makes (the same kinds of names).
        does: one line for a reader.
        per_target: it reads only the target and writes only :data:`TARGET_FILES`, so the workflow runs it
            once per target video, whatever number of videos (methods, identities) share it.
    """

    name: str
    command: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    does: str
    per_target: bool = False


#: The stages, in the order a video goes through them. ``refined`` is the output video in the results
#: layout (FF++: ``refined_sequences/<Method>-NICe/<c>/videos/...``), the one file outside the work folder.
CHAIN: tuple[Stage, ...] = (
    Stage("extract", "probe", ("target",), ("probe", "audio"),
          "probe the target (refusing a broken one before any work) and copy its audio", per_target=True),
    Stage("track", "track", ("target", "probe"), ("store", "preview"),
          "track one subject's face; aligned crops, masks and pose into the store", per_target=True),
    Stage("motion", "motion", ("target", "probe"), ("motion",),
          "the target's optical flow for e_stab, computed once and read by every evaluation of the target",
          per_target=True),
    Stage("proxy", "swap", ("target", "identity", "store"), ("proxy",),
          "make the per-frame swapped proxy when none is given (built-in swapper or an external tool)"),
    Stage("proxy_check", "check-proxy", ("target", "proxy"), ("proxy_check",),
          "check the proxy against the target: frame count, rate, size, a constant frame offset"),
    Stage("prior3d", "prior3d", ("store", "proxy", "proxy_check", "identity"), ("prior3d",),
          "the 3D prior: UV unwrap, lighting, albedo, detail, shape and identity of the target, the proxy and the "
          "identity, for the carrier's 3D losses"),
    Stage("carrier", "fit", ("store", "proxy", "proxy_check", "prior3d"), ("proxy_crops", "checkpoints", "carrier"),
          "fit the carrier: target crops to proxy crops (and the 3D losses), checkpointed every epoch"),
    Stage("composite", "composite", ("target", "store", "proxy_crops", "carrier", "proxy"), ("refined",),
          "run the carrier on every crop and paste its change back into the target's frames"),
    Stage("evaluate", "eval", ("target", "refined", "proxy", "proxy_check", "store", "prior3d", "motion"),
          ("metrics",),
          "metrics of the refined video and of the proxy against the target (and a clean reference)"),
    Stage("provenance", "provenance", ("target", "proxy", "probe", "store", "proxy_check", "prior3d", "carrier",
                                       "refined", "metrics"), ("provenance",),
          "the video's record: every input and result with its SHA-256, the settings, the software"),
)


def stage(name: str) -> Stage:
    """The stage called ``name``."""
    for step in CHAIN:
        if step.name == name:
            return step
    raise KeyError(f"no stage {name!r} in the chain (stages: {', '.join(s.name for s in CHAIN)})")
