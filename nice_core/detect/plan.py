"""The workflow's view of a study: which videos to track, which store cuts each video's clips, which clips
each training and test job reads. Pure Python on the index JSON, so the workflow builds its DAG without torch.

Every FF++ fake (per-frame or refined) is cut through its original's tracking store (the fakes are
pixel-aligned with it, :mod:`~nice_core.detect.clips`); every other video, through its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nice_core.detect.index import VideoEntry, read_index
from nice_core.detect.study import check_condition, condition_entries, entries_of_test_set
from nice_core.errors import InputError
from nice_core.inputs.ffpp import COMPRESSIONS

__all__ = ["StudyPlan", "study_plan"]


@dataclass(frozen=True)
class StudyPlan:
    """A study index with the store video of each entry (entry id -> the video its store is tracked from)."""

    entries: tuple[VideoEntry, ...]
    store_video: Mapping[str, str]
    conditions: Mapping[str, tuple[str, ...]]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def entry(self, entry_id: str) -> VideoEntry:
        return next(e for e in self.entries if e.id == entry_id)

    def videos_to_track(self) -> list[str]:
        """The videos whose tracking stores the clips need, each once."""
        return sorted(set(self.store_video.values()))

    def training_ids(self, condition: str) -> list[str]:
        """The entries whose clips ``condition``'s training job reads (its train and val videos)."""
        sources = self.conditions[condition]
        return [e.id for split in ("train", "val") for e in condition_entries(self.entries, sources, split)]

    def test_ids(self, test_set: str, condition: str) -> list[str]:
        """The entries ``condition``'s eval job on ``test_set`` reads: the test set and the condition's
        validation videos (the threshold is chosen on them)."""
        val = condition_entries(self.entries, self.conditions[condition], "val")
        return sorted({e.id for e in [*entries_of_test_set(self.entries, test_set), *val]})

    def probe_ids(self, test_set: str) -> list[str]:
        """The real videos of ``test_set`` (their clips are cut again with the watermark for the probe)."""
        return [e.id for e in entries_of_test_set(self.entries, test_set) if e.label == 0]


def _store_videos(entries: Sequence[VideoEntry]) -> dict[str, str]:
    originals = {e.identities[0]: e.path for e in entries if e.dataset == "ffpp" and e.source == "original"}
    out = {}
    for e in entries:
        if e.dataset == "ffpp" and e.label == 1:
            if e.identities[0] not in originals:
                raise InputError(f"{e.id}: its original ({e.identities[0]}) is not in the index; its clips are "
                                 "cut through the original's tracking store")
            out[e.id] = originals[e.identities[0]]
        else:
            out[e.id] = e.path
    return out


def study_plan(index: str | Path, conditions: Mapping[str, Sequence[str]], test_sets: Sequence[str]) -> StudyPlan:
    """The plan of the study in ``index`` for ``conditions`` (name -> sources) and ``test_sets``.

    Raises:
        InputError: an unusable index, an FF++ id without its compression level, a condition without
            'original' and a fake source, a condition or test set with no video in the index, or an FF++ fake
            whose original is missing.
    """
    entries = tuple(read_index(index))
    for e in entries:
        if e.dataset == "ffpp" and e.compression not in COMPRESSIONS:
            raise InputError(f"{e.id}: an FF++ id is <folder>/<method>/<compression>/<name> with a compression of "
                             f"{', '.join(COMPRESSIONS)} (its videos are re-encoded at that level)")
    checked = {name: check_condition(name, sources) for name, sources in conditions.items()}
    for name, sources in checked.items():
        if not condition_entries(entries, sources, "train"):
            raise InputError(f"{index}: condition {name} has no training video (sources {', '.join(sources)})")
    for test_set in test_sets:
        if not entries_of_test_set(entries, test_set):
            raise InputError(f"{index}: test set {test_set} has no video (drop it from detector.test_sets)")
    return StudyPlan(entries, _store_videos(entries), checked)
