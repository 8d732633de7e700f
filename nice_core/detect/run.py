"""The study's steps on files: cut a video's clips, train one condition at one seed, evaluate it on a test set.

Each step reads and writes files only (the index JSON, ``clips/<id>.h5``, a run folder), so the CLI verbs
and the workflow's rules are thin calls of these functions, and a killed step reruns from its inputs (the
trainer resumes from its checkpoint).

A video too short or too faceless for one clip is not dropped silently: its clips file holds no clip and
the reason (attribute ``reason``); training and testing leave it out and the report lists it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import h5py
import numpy as np

from nice_core.detect.clips import NoClipError, StoredClips, extract_clips
from nice_core.detect.i3d import I3DConfig, I3DResNet
from nice_core.detect.index import VideoEntry
from nice_core.detect.metrics import detection_scores, roc_curve, threshold_at_best_balanced_accuracy, video_scores
from nice_core.detect.study import clips_path, condition_entries, entries_of_test_set
from nice_core.detect.train import FORMAT, TrainConfig, score_clips, train_detector
from nice_core.errors import InputError
from nice_core.io.atomic import atomic_output, write_json
from nice_core.io.digest import file_sha256

__all__ = ["cut_clips", "encodings_by_source", "evaluate_detector", "load_detector", "stored_clips",
           "train_condition"]

MODEL_FILE = "model.safetensors"
TRAIN_RECORD = "train.json"


def cut_clips(video: str | Path, store: str | Path, output: str | Path, length: int, count: int, size: int,
              mark: int | None = None) -> str:
    """:func:`~nice_core.detect.clips.extract_clips`, or, for a video without one eligible window, a clips
    file with no clip and the reason. Returns ``""`` or that reason."""
    try:
        extract_clips(video, store, output, length, count, size, mark)
        return ""
    except NoClipError as err:
        reason = str(err)
    with atomic_output(output, [Path(video), Path(store)]) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("clips", shape=(0, length, size, size, 3), dtype=np.uint8)
        h5.create_dataset("starts", shape=(0,), dtype=np.int64)
        h5.attrs.update(video=str(video), video_sha256=file_sha256(video), store_sha256=file_sha256(store),
                        length=length, size=size, reason=reason)
    return reason


def _clip_count(path: Path) -> tuple[int, str]:
    try:
        with h5py.File(path, "r") as h5:
            return int(h5["clips"].shape[0]), str(h5.attrs.get("reason", ""))
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: not a clips file ({err})") from None


def stored_clips(entries: Sequence[VideoEntry], clips_dir: str | Path) -> tuple[StoredClips, dict[str, str]]:
    """The clips of ``entries`` that have at least one, as a clip set labelled per video, and ``{video id:
    reason}`` of those whose clips file holds none (left out, to be listed). A missing file is refused."""
    kept, left_out = [], {}
    for entry in entries:
        path = clips_path(clips_dir, entry)
        if not path.is_file():
            raise InputError(f"no clips for {entry.id}: {path} is missing (cut them first: nice-core detect clips)")
        n, reason = _clip_count(path)
        if n == 0:
            left_out[entry.id] = reason or "no clip"
        else:
            kept.append(entry)
    clips = StoredClips([clips_path(clips_dir, e) for e in kept], [e.label for e in kept], [e.id for e in kept])
    return clips, left_out


def encodings_by_source(entries: Sequence[VideoEntry], *sets: StoredClips | None) -> dict[str, dict[str, int]]:
    """``{source: {encoding: videos}}`` over the clip sets' videos (:func:`~nice_core.detect.clips.video_path_note`):
    how each class reached the detector. Sources whose videos differ here can be told apart by encoding."""
    source = {e.id: e.source for e in entries}
    out: dict[str, dict[str, int]] = {}
    for clips in sets:
        for video, encoding in (clips.encodings if clips is not None else {}).items():
            counts = out.setdefault(source[video], {})
            counts[encoding] = counts.get(encoding, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def train_condition(entries: Sequence[VideoEntry], clips_dir: str | Path, condition: str, sources: Sequence[str],
                    seed: int, output: str | Path, model_config: I3DConfig, config: TrainConfig,
                    init: dict | None = None, init_note: str = "from scratch",
                    log: Callable[[str], None] | None = None) -> Path:
    """Train ``condition`` (its ``sources``' FF++ train videos, chosen on their val videos) at ``seed`` into
    the folder ``output``: ``checkpoint/`` (resumable), ``model.safetensors`` (the chosen weights) and
    ``train.json`` (history, choice, sets). Returns the model file."""
    from safetensors.torch import save

    output = Path(output)
    train_set, left_out = stored_clips(condition_entries(entries, sources, "train"), clips_dir)
    val_entries = condition_entries(entries, sources, "val")
    val_set = None
    if val_entries:
        val_set, val_left_out = stored_clips(val_entries, clips_dir)
        left_out |= val_left_out
    try:
        result = train_detector(train_set, val_set, model_config, replace(config, seed=seed), output / "checkpoint",
                                log=log, init=init)
    finally:
        train_set.close()
        if val_set is not None:
            val_set.close()
    record = {"format": FORMAT, "condition": condition, "sources": list(sources), "seed": seed,
              "model": model_config.to_dict(), "train_config": {**asdict(config), "seed": seed}, "init": init_note,
              "best_step": result.best_step, "best_val_auc": result.best_val_auc, "history": result.history,
              "train_videos": len(set(train_set.videos)), "train_clips": len(train_set),
              "val_videos": len(set(val_set.videos)) if val_set is not None else 0,
              "left_out": [{"id": k, "reason": r} for k, r in sorted(left_out.items())],
              "encodings": encodings_by_source(entries, train_set, val_set)}
    tensors = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
    metadata = {"format": FORMAT, "model": json.dumps(model_config.to_dict()), "condition": condition,
                "sources": json.dumps(list(sources)), "seed": str(seed), "init": init_note,
                "steps": str(config.steps), "left_out": json.dumps(record["left_out"]),
                "encodings": json.dumps(record["encodings"])}
    with atomic_output(output / MODEL_FILE) as tmp:
        tmp.write_bytes(save(tensors, metadata=metadata))
    write_json(output / TRAIN_RECORD, record)
    return output / MODEL_FILE


def load_detector(path: str | Path) -> tuple[I3DResNet, dict[str, str]]:
    """A model file written by :func:`train_condition`: the network (eval mode) and its metadata."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise InputError(f"{path}: not a detector model (format {metadata.get('format')!r}, expected {FORMAT})")
        model = I3DResNet(I3DConfig.from_dict(json.loads(metadata["model"])))
        model.load_state_dict(load_file(str(path)))
    except (OSError, SafetensorError, KeyError, ValueError, RuntimeError) as err:
        raise InputError(f"{path}: cannot load the detector ({err})") from None
    return model.eval(), metadata


def _video_level(model: I3DResNet, clips: StoredClips, batch_size: int, device: str,
                 precision: str) -> dict[str, float]:
    probs = score_clips(model, clips, batch_size, device, precision)
    return video_scores(zip(clips.videos, probs, strict=True))


def _watermark_probe(model: I3DResNet, reals: Sequence[VideoEntry], scores: dict[str, float], probe_dir: str | Path,
                     batch_size: int, device: str, precision: str) -> dict:
    """The mean fake score of the real test videos without and with nice-core's watermark (their clips cut
    again from marked frames, in ``probe_dir``): a detector that keys on the mark scores the marked reals
    higher."""
    if not reals:
        raise InputError("the watermark probe needs real test videos with clips")
    marked, _ = stored_clips(reals, probe_dir)
    with_mark = _video_level(model, marked, batch_size, device, precision)
    marked.close()
    ids = sorted(set(with_mark) & {e.id for e in reals})
    before = float(np.mean([scores[v] for v in ids]))
    after = float(np.mean([with_mark[v] for v in ids]))
    return {"reals": len(ids), "mean_fake_score": before, "mean_fake_score_marked": after, "change": after - before}


def evaluate_detector(model_path: str | Path, entries: Sequence[VideoEntry], clips_dir: str | Path, test_set: str,
                      output: str | Path, batch_size: int = 8, device: str = "cpu", precision: str = "fp32",
                      probe_dir: str | Path | None = None) -> dict:
    """Score ``test_set``'s videos with a trained detector and write its record to ``output`` (JSON): the
    metrics (video scores, the mean of each video's clip probabilities), the threshold chosen on the
    condition's validation videos, the ROC curve, every video's score, and the videos left out (no clip).
    With ``probe_dir`` (clips of the real test videos cut from watermarked frames: ``nice-core detect clips
    --watermark``), also the watermark probe (:func:`_watermark_probe`)."""
    model, meta = load_detector(model_path)
    sources = json.loads(meta["sources"])
    tested = entries_of_test_set(entries, test_set)
    if not tested:
        raise InputError(f"the index has no video of test set {test_set}")
    label = {e.id: e.label for e in tested}
    threshold, val_note = 0.5, "no validation videos: the threshold is 0.5"
    val = condition_entries(entries, sources, "val")
    if val:
        val_clips, _ = stored_clips(val, clips_dir)  # its left-outs are in the training's record
        val_scores = _video_level(model, val_clips, batch_size, device, precision)
        val_clips.close()
        val_label = {e.id: e.label for e in val}
        threshold = threshold_at_best_balanced_accuracy([val_label[v] for v in val_scores], list(val_scores.values()))
        val_note = f"chosen on {len(val_scores)} validation videos (best balanced accuracy)"
    test_clips, left_out = stored_clips(tested, clips_dir)
    # The videos the training left out too (its train and val sets), so the report lists every one.
    left_out = {f["id"]: f["reason"] for f in json.loads(meta.get("left_out", "[]"))} | left_out
    scores = _video_level(model, test_clips, batch_size, device, precision)
    test_encodings = encodings_by_source(tested, test_clips)
    test_clips.close()
    probe = None
    if probe_dir is not None:
        probe = _watermark_probe(model, [e for e in tested if e.label == 0 and e.id in scores], scores, probe_dir,
                                 batch_size, device, precision)
    ids = sorted(scores)
    labels, values = [label[v] for v in ids], [scores[v] for v in ids]
    metrics = detection_scores(labels, values, threshold)
    fpr, tpr, _ = roc_curve(labels, values)
    record = {"format": FORMAT, "condition": meta["condition"], "seed": int(meta["seed"]), "test_set": test_set,
              "model": str(model_path), "model_sha256": file_sha256(model_path), "init": meta.get("init", ""),
              "steps": int(meta.get("steps", 0)), "metrics": dict(metrics),
              "threshold_note": val_note, "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
              "videos": [{"id": v, "label": label[v], "score": scores[v]} for v in ids],
              "left_out": [{"id": k, "reason": r} for k, r in sorted(left_out.items())],
              "encodings": {"train": json.loads(meta.get("encodings", "{}")), "test": test_encodings},
              **({"watermark_probe": probe} if probe is not None else {})}
    write_json(output, record)
    return record
