"""One video end to end: check the inputs, track the target, fit the carrier, re-composite.

:func:`refine_video` is what ``nice-core refine`` runs: the chain's (:data:`nice_core.chain.CHAIN`) stages
``extract`` (the probe), ``track``, ``proxy_check``, ``prior3d`` (when a 3D loss is on), ``carrier`` and
``composite`` for a given proxy, in that order, through the same functions and work-file names
(:class:`~nice_core.chain.WorkFiles`) as the workflow's rules.

Work files (the target's ``face.h5`` and the carrier's checkpoints) go to ``work_dir``, by default a hidden
folder next to the output, ``.<output name>.work``. A run that is killed (a cluster's time limit, kill -9)
leaves it behind, and the same command resumes: the store is reused when it belongs to the same target and
tracking settings, and the fit continues after its last complete epoch. A successful run removes the
default work folder (keep it with ``keep_work``); a run refused for bad input removes whatever it created, so
no output and no work files are left.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nice_core.carrier.config import FitConfig
from nice_core.carrier.fit import fit_carrier
from nice_core.chain import WorkFiles
from nice_core.composite.render import CompositeConfig, composite_video
from nice_core.errors import InputError, NiceError, OutputError
from nice_core.face import TrackConfig, track_video
from nice_core.io import EncodeOptions, probe_video
from nice_core.io.atomic import refuse_input_overwrite
from nice_core.prior3d.stage import Prior3DConfig, build_prior3d, prior3d_current
from nice_core.store import FaceStore

__all__ = ["RefineResult", "default_work_dir", "refine_video", "store_matches"]


@dataclass
class RefineResult:
    output: Path
    uncertainty: Path | None
    n_frames: int
    frames_refined: int
    epochs: int
    steps: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        return f"{self.frames_refined}/{self.n_frames} frames refined -> {self.output} ({parts})"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["output"] = str(self.output)
        data["uncertainty"] = str(self.uncertainty) if self.uncertainty else None
        return data


def default_work_dir(output: str | Path) -> Path:
    output = Path(output)
    return output.parent / f".{output.name}.work"


def store_matches(store_path: Path, target: Path, config: TrackConfig) -> bool:
    """Whether ``store_path`` is a complete store of ``target`` made with ``config`` (so tracking can be skipped)."""
    from nice_core.io.digest import file_sha256

    if not store_path.is_file():
        return False
    try:
        with FaceStore.open(store_path) as store:
            same_config = store.json_attr("config") == json.loads(json.dumps(asdict(config)))
            return same_config and store.h5.attrs["video_sha256"] == file_sha256(target)
    except (OSError, KeyError, ValueError, NiceError):
        return False


def refine_video(target: str | Path, proxy: str | Path, output: str | Path, *, identity: str | Path | None = None,
                 fit: FitConfig | None = None, track: TrackConfig | None = None,
                 prior3d: Prior3DConfig | None = None, composite: CompositeConfig | None = None,
                 encode: EncodeOptions | None = None,
                 work_dir: str | Path | None = None, keep_work: bool = False,
                 uncertainty_output: str | Path | None = None, show_progress: bool | None = None,
                 log: Callable[[str], None] | None = None, init: str | Path | None = None) -> RefineResult:
    """Refine one swapped video (``proxy``) of ``target`` into ``output``.

    ``init``: a fitted carrier to start the fit from (:func:`~nice_core.carrier.fit_carrier`'s warm start).

    Raises:
        InputError: a missing, non-video or truncated input, a proxy that does not match the target, an
            output that would overwrite an input.
        NoFaceError: no face anywhere in the target.
    """
    from nice_core.proxy.check import check_proxy

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    fit = fit or FitConfig()
    track = track or TrackConfig(preview=False)
    target, proxy, output = Path(target), Path(proxy), Path(output)
    inputs = [target, proxy, identity]
    refuse_input_overwrite(output, inputs)
    if uncertainty_output is not None:
        refuse_input_overwrite(uncertainty_output, [*inputs, output])
    if identity is not None and not Path(identity).is_file():
        raise InputError(f"identity file not found: {identity}")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    probe = probe_video(target)
    check = check_proxy(target, proxy, target_probe=probe)
    for note in check.notes:
        log(note)
    seconds["checks"] = time.perf_counter() - t

    explicit_work = work_dir is not None
    work = Path(work_dir) if explicit_work else default_work_dir(output)
    created = not work.exists()
    work.mkdir(parents=True, exist_ok=True)
    files = WorkFiles(work)
    store_path = files.store
    finished, stage = False, "tracking"
    try:
        t = time.perf_counter()
        if store_matches(store_path, target, track):
            log(f"reusing {store_path}")
        else:
            track_video(target, work, track, probe=probe, show_progress=show_progress)
        seconds["tracking"] = time.perf_counter() - t

        prior = None
        if fit.loss.uses_prior3d:
            t, stage, prior = time.perf_counter(), "3D prior", files.prior3d
            prior3d = prior3d or Prior3DConfig()
            if prior3d_current(prior, store_path, proxy, identity, prior3d):
                log(f"reusing {prior}")
            else:
                build_prior3d(store_path, prior, proxy=proxy, check=check, identity=identity, config=prior3d,
                              threads=fit.threads, show_progress=show_progress)
            seconds["prior3d"] = time.perf_counter() - t

        t, stage = time.perf_counter(), "fitting"
        fitted = fit_carrier(store_path, proxy, fit, files.checkpoints, check=check, prior3d=prior,
                             proxy_crops=files.proxy_crops, init=init, log=log)
        seconds["fitting"] = time.perf_counter() - t

        t, stage = time.perf_counter(), "compositing"
        labels = {"proxy": proxy, **({"identity": identity} if identity is not None else {})}
        result = composite_video(target, store_path, fitted.model, output, size=fit.size, config=composite,
                                 encode=encode, uncertainty_output=uncertainty_output, label_inputs=labels,
                                 probe=probe, show_progress=show_progress, proxy_crops=files.proxy_crops)
        seconds["compositing"] = time.perf_counter() - t
        finished = True
    except NiceError as err:
        if created and stage != "compositing" and not isinstance(err, OutputError):
            shutil.rmtree(work, ignore_errors=True)  # bad input (no face, a proxy that does not fit): nothing kept
        else:  # a failure to write keeps every finished stage: the rerun redoes only what failed
            log(f"kept {work} (the finished stages); rerun the same command to resume")
        raise
    except BaseException:
        log(f"kept {work} (the finished stages); rerun the same command to resume")
        raise
    finally:
        if finished and not (explicit_work or keep_work):
            shutil.rmtree(work, ignore_errors=True)
    return RefineResult(result.output, result.uncertainty, result.n_frames, result.frames_refined,
                        fitted.epochs, fitted.steps, seconds)
