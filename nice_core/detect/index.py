"""The study's video-level index: every video with its label, source, split and identities.

Built from three kinds of tree (no video is opened; missing files are refused at listing time):

* **FaceForensics++** (:func:`ffpp_entries`): ``original_sequences/youtube/<c>/videos/<t>.mp4`` (real,
  source ``original``, identity ``t``) and ``manipulated_sequences/<Method>/<c>/videos/<t>_<s>.mp4`` (fake,
  source ``per-frame``, identities ``t`` and ``s``), each placed in ``train``/``val``/``test`` by the official
  split files (a pair ``[t, s]`` stands for both ``t_s`` and ``s_t``; an original goes where its id is
  listed).
* **This pipeline's refined results** for the same pairs (:func:`refined_entries`):
  ``refined_sequences/<Method>-NICe/<c>/videos/<t>_<s>.mp4`` (fake, source ``refined``), split like the pair.
* **Celeb-DF v2** (:func:`celebdf_entries`): ``List_of_testing_videos.txt``, lines ``<1|0> <folder>/<name>.mp4``
  where **1 is real** and 0 fake; cross-checked against the folder (``Celeb-real``, ``YouTube-real`` real;
  ``Celeb-synthesis`` fake). All ``test``. Identities come from the names: ``id3_0002`` is celebrity ``id3``,
  ``id3_id16_0002`` shows ``id16``'s face on ``id3``'s video (both identities), ``YouTube-real/00170`` is its
  own person.

Labels follow :mod:`nice_core.detect.metrics`: 1 fake, 0 real. :func:`check_identities` refuses an index in
which one identity appears in two splits. Identities are namespaced by data set (``ffpp:071``,
``celebdf:id3``): the two data sets' people are not linked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from nice_core.errors import InputError
from nice_core.inputs.ffpp import COMPRESSIONS, split_pairs

__all__ = [
    "SOURCES",
    "SPLITS",
    "VideoEntry",
    "celebdf_entries",
    "check_identities",
    "export_deepfakebench",
    "ffpp_entries",
    "read_index",
    "refined_entries",
    "write_index",
]

SPLITS = ("train", "val", "test")
SOURCES = ("original", "per-frame", "refined", "external")
CELEBDF_LIST = "List_of_testing_videos.txt"
_REAL_FOLDERS = {"Celeb-real", "YouTube-real"}
_FAKE_FOLDERS = {"Celeb-synthesis"}
_FFPP_NAME = re.compile(r"([A-Za-z0-9]+)_([A-Za-z0-9]+)")
_CELEB_REAL = re.compile(r"(id\d+)_\d+")
_CELEB_FAKE = re.compile(r"(id\d+)_(id\d+)_\d+")
#: DeepfakeBench's labels for FF++'s methods (its ``rearrange.py`` names).
_BENCH_LABEL = {"Deepfakes": "FF-DF", "Face2Face": "FF-F2F", "FaceSwap": "FF-FS", "NeuralTextures": "FF-NT",
                "FaceShifter": "FF-FH"}


@dataclass(frozen=True)
class VideoEntry:
    """One video of the study.

    Args:
        id: unique, e.g. ``ffpp/FaceSwap/c23/071_054``, ``ffpp-refined/FaceSwap/c23/071_054``,
            ``celebdf/Celeb-synthesis/id3_id16_0002``.
        path: the video file.
        label: 1 fake, 0 real.
        source: one of :data:`SOURCES`.
        split: one of :data:`SPLITS`.
        identities: the people in it (namespaced: ``ffpp:071``).
        dataset: ``ffpp`` or ``celebdf``.
        method: the manipulation (FF++ folder name, ``Celeb-synthesis``) or ``""`` for a real video.
        pair: the id shared by a per-frame video and its refined version (``FaceSwap/071_054``), else ``""``.
    """

    id: str
    path: str
    label: int
    source: str
    split: str
    identities: tuple[str, ...]
    dataset: str
    method: str = ""
    pair: str = ""

    def __post_init__(self) -> None:
        if self.label not in (0, 1) or self.source not in SOURCES or self.split not in SPLITS:
            raise ValueError(f"{self.id}: label {self.label!r}, source {self.source!r} or split {self.split!r} "
                             f"is not one of 0/1, {SOURCES}, {SPLITS}")

    @property
    def compression(self) -> str:
        """An FF++ entry's compression level (its id's third part: ``ffpp/<folder>/<c>/<name>``), else ``""``."""
        parts = self.id.split("/")
        return parts[2] if self.dataset == "ffpp" and len(parts) == 4 else ""

    def to_dict(self) -> dict:
        return {**asdict(self), "identities": list(self.identities)}

    @classmethod
    def from_dict(cls, data: dict) -> VideoEntry:
        return cls(**{**data, "identities": tuple(data["identities"])})


def _splits(split_files: dict[str, str | Path]) -> dict[frozenset[str], str]:
    """Each listed id pair -> its split; a pair listed in two splits is refused."""
    unknown = set(split_files) - set(SPLITS)
    if unknown:
        raise InputError(f"unknown split name(s) {', '.join(sorted(unknown))}; use {', '.join(SPLITS)}")
    where: dict[frozenset[str], str] = {}
    for split, path in split_files.items():
        for pair in split_pairs(Path(path).expanduser()):
            if pair in where and where[pair] != split:
                raise InputError(f"FaceForensics++ pair {'/'.join(sorted(pair))} is in both {where[pair]} and {split}")
            where[pair] = split
    return where


def _refuse_missing(paths: Iterable[Path], what: str) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"{len(missing)} {what} missing: {', '.join(map(str, missing[:3]))}{more}")


def ffpp_entries(root: str | Path, methods: Sequence[str], compression: str,
                 split_files: dict[str, str | Path]) -> list[VideoEntry]:
    """FF++'s originals and the ``methods``' manipulated videos that the split files place (see the module
    notes); videos in no split are left out (FF++'s official splits cover every video)."""
    root = Path(root).expanduser()
    if compression not in COMPRESSIONS:
        raise InputError(f"unknown FaceForensics++ compression {compression!r}; use one of {', '.join(COMPRESSIONS)}")
    where = _splits(split_files)
    id_split = {i: s for pair, s in where.items() for i in pair}
    originals = root / "original_sequences" / "youtube" / compression / "videos"
    if not originals.is_dir():
        raise InputError(f"FaceForensics++ original videos folder not found: {originals}")
    entries = [VideoEntry(f"ffpp/original/{compression}/{p.stem}", str(p), 0, "original", id_split[p.stem],
                          (f"ffpp:{p.stem}",), "ffpp")
               for p in sorted(originals.glob("*.mp4")) if p.stem in id_split]
    for method in methods:
        folder = root / "manipulated_sequences" / method / compression / "videos"
        if not folder.is_dir():
            raise InputError(f"FaceForensics++ method folder not found: {folder}")
        for video in sorted(folder.glob("*.mp4")):
            entry = _pair_entry(video, method, compression, where, "per-frame", f"ffpp/{method}/{compression}")
            if entry is not None:
                entries.append(entry)
    _refuse_missing([originals / f"{i}.mp4" for e in entries if e.source != "original"
                     for i in (x.removeprefix("ffpp:") for x in e.identities)], "FaceForensics++ original video(s)")
    return entries


def _pair_entry(video: Path, method: str, compression: str, where: dict[frozenset[str], str], source: str,
                prefix: str) -> VideoEntry | None:
    match = _FFPP_NAME.fullmatch(video.stem)
    if match is None:
        raise InputError(f"unexpected FaceForensics++ video name {video.name} in {video.parent} "
                         "(expected <target>_<source>.mp4)")
    target, identity = match.groups()
    split = where.get(frozenset((target, identity)))
    if split is None:
        return None
    return VideoEntry(f"{prefix}/{video.stem}", str(video), 1, source, split, (f"ffpp:{target}", f"ffpp:{identity}"),
                      "ffpp", method, f"{method}/{video.stem}")


def refined_entries(results: str | Path, per_frame: Sequence[VideoEntry]) -> list[VideoEntry]:
    """The refined version of every per-frame FF++ entry, from a results folder of this pipeline
    (``<results>/refined_sequences/<Method>-NICe/<c>/videos/<t>_<s>.mp4``); missing ones are refused (run
    the workflow on them first)."""
    results = Path(results).expanduser()
    entries = []
    for e in per_frame:
        if e.source != "per-frame" or e.dataset != "ffpp":
            continue
        path = results / "refined_sequences" / f"{e.method}-NICe" / e.compression / "videos" / Path(e.path).name
        entries.append(VideoEntry(f"ffpp-refined/{e.method}/{e.compression}/{path.stem}", str(path), 1, "refined",
                                  e.split, e.identities, "ffpp", e.method, e.pair))
    _refuse_missing([Path(e.path) for e in entries], "refined video(s) (run the workflow on their pairs first)")
    return entries


def celebdf_entries(root: str | Path) -> list[VideoEntry]:
    """Celeb-DF v2's test list as entries (see the module notes for labels and identities)."""
    root = Path(root).expanduser()
    listing = root / CELEBDF_LIST
    if not listing.is_file():
        raise InputError(f"Celeb-DF v2 test list not found: {listing}")
    entries = []
    for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1") or "/" not in parts[1]:
            raise InputError(f"{listing}:{number}: expected '<1 real | 0 fake> <folder>/<video>.mp4', got {line!r}")
        real = parts[0] == "1"
        folder, name = parts[1].split("/", 1)
        if folder not in _REAL_FOLDERS | _FAKE_FOLDERS:
            raise InputError(f"{listing}:{number}: unknown folder {folder} (expected Celeb-real, YouTube-real or "
                             "Celeb-synthesis)")
        if (folder in _REAL_FOLDERS) != real:
            raise InputError(f"{listing}:{number}: {parts[1]} is labelled {parts[0]} ({'real' if real else 'fake'}: "
                             f"in this list 1 is real) but {folder} holds {'fake' if real else 'real'} videos")
        stem = Path(name).stem
        entries.append(VideoEntry(f"celebdf/{folder}/{stem}", str(root / parts[1]), 0 if real else 1,
                                  "original" if real else "external", "test", _celeb_identities(folder, stem),
                                  "celebdf", "" if real else folder))
    if not entries:
        raise InputError(f"Celeb-DF v2 test list is empty: {listing}")
    _refuse_missing([Path(e.path) for e in entries], "Celeb-DF v2 video(s)")
    return entries


def _celeb_identities(folder: str, stem: str) -> tuple[str, ...]:
    if folder == "YouTube-real":
        return (f"celebdf:youtube-{stem}",)
    match = (_CELEB_FAKE if folder in _FAKE_FOLDERS else _CELEB_REAL).fullmatch(stem)
    if match is None:
        raise InputError(f"unexpected Celeb-DF v2 video name {folder}/{stem}.mp4 (expected id<a>_<n> in "
                         "Celeb-real, id<a>_id<b>_<n> in Celeb-synthesis)")
    return tuple(f"celebdf:{i}" for i in match.groups())


def check_identities(entries: Sequence[VideoEntry]) -> None:
    """Refuse an index in which one identity is in two splits (train/val/test must not share a person), or
    in which two entries share an id.

    Raises:
        InputError: one line naming the identity, its two splits and a video of each.
    """
    seen_ids: set[str] = set()
    first: dict[str, VideoEntry] = {}
    for entry in entries:
        if entry.id in seen_ids:
            raise InputError(f"the index lists {entry.id} twice")
        seen_ids.add(entry.id)
        for person in entry.identities:
            other = first.setdefault(person, entry)
            if other.split != entry.split:
                raise InputError(f"identity {person} is in both {other.split} ({other.id}) and {entry.split} "
                                 f"({entry.id}): train, val and test must not share a person")


def write_index(path: str | Path, entries: Sequence[VideoEntry]) -> None:
    """Write the index as JSON (a list of entries) after :func:`check_identities`."""
    from nice_core.io.atomic import write_json  # here: the workflow reads indexes without loading the io layer

    check_identities(entries)
    write_json(path, {"format": "nice-core-detect-index/1", "videos": [e.to_dict() for e in entries]})


def read_index(path: str | Path) -> list[VideoEntry]:
    """Read an index written by :func:`write_index` (checked again)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [VideoEntry.from_dict(v) for v in data["videos"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a detection index ({err})") from None
    check_identities(entries)
    return entries


def export_deepfakebench(entries: Sequence[VideoEntry], path: str | Path, name: str = "FaceForensics++") -> dict:
    """The FF++ entries in DeepfakeBench's data-set JSON layout (``preprocessing/rearrange.py``):
    ``{name: {label: {split: {compression: {video: {"label", "frames", "masks", "video"}}}}}}``, labels
    ``FF-real``, ``FF-DF``, ... and ``<label>-NICe`` for refined videos. ``frames`` and ``masks`` are left
    empty (DeepfakeBench's own preprocessing extracts them from ``video``); written to ``path`` and returned."""
    out: dict = {name: {}}
    for e in entries:
        if e.dataset != "ffpp":
            continue
        label = "FF-real" if e.label == 0 else _BENCH_LABEL.get(e.method, f"FF-{e.method}")
        if e.source == "refined":
            label += "-NICe"
        compression = e.id.split("/")[2]
        video = Path(e.path).stem
        out[name].setdefault(label, {}).setdefault(e.split, {}).setdefault(compression, {})[video] = {
            "label": label, "frames": [], "masks": [], "video": e.path}
    from nice_core.io.atomic import write_json

    write_json(path, out)
    return out
