"""Proxy inputs: (target, proxy, identity) video triples from a FaceForensics++ tree or a CSV file.

FaceForensics++ layout (``<compression>`` is ``raw``, ``c23`` or ``c40``; ids are like ``000``)::

    <root>/original_sequences/youtube/<compression>/videos/<target>.mp4              target and identity
    <root>/manipulated_sequences/<Method>/<compression>/videos/<target>_<source>.mp4  proxy

The proxy ``<target>_<source>.mp4`` puts the face of video ``<source>`` (the identity) into video
``<target>``. Refined results mirror the layout, so a detector that reads FF++ reads them unchanged::

    refined_sequences/<Method>-NICe/<compression>/videos/<target>_<source>.mp4

A CSV file lists any other set of videos (see :func:`csv_pairs`).

Only file existence is checked here: no video is opened. Every missing file is reported at listing time,
before a run of a thousand jobs starts, not by the one job that needs it.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nice_core.errors import InputError

#: FaceForensics++ compression levels (folder names).
COMPRESSIONS = ("raw", "c23", "c40")
#: How FF++ encoded each level (H.264 with libx264, 4:2:0): its constant rate factor; 0 is lossless.
FFPP_CRF = {"raw": 0, "c23": 23, "c40": 40}
#: A name is used as a Snakemake wildcard and a folder name: letters, digits, ``.``, ``_`` and ``-``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: A manipulated FF++ video is named ``<target>_<source>.mp4``.
_FFPP_VIDEO = re.compile(r"([A-Za-z0-9]+)_([A-Za-z0-9]+)")
#: How many missing files an error message lists before "and N more".
_LIST_AT_MOST = 3
CSV_COLUMNS = ("target", "proxy", "identity")
CSV_OPTIONAL_COLUMNS = ("name", "method")
#: ``method`` of CSV rows without one.
CSV_DEFAULT_METHOD = "external"


@dataclass(frozen=True)
class VideoPair:
    """One proxy to refine: a target video, its per-frame swapped proxy, and the identity's source video.

    Args:
        name: unique, safe as a Snakemake wildcard and a folder name (e.g. ``FaceSwap__c23__000_003``).
        method: the swap method (FF++ folder name, e.g. ``FaceSwap``), or the CSV's ``method``.
        compression: FF++ compression (``raw``/``c23``/``c40``); ``None`` for CSV rows.
        target: the original video.
        proxy: the swapped video made from ``target``.
        identity: the video the swapped-in face comes from; ``None`` if unknown (CSV).
        output_relpath: where the refined video goes, relative to the output root.
    """

    name: str
    method: str
    compression: str | None
    target: Path
    proxy: Path
    identity: Path | None
    output_relpath: Path


def ffpp_pairs(root: str | Path, methods: Iterable[str] | str, compression: str = "c23",
               split: str | Path | None = None) -> list[VideoPair]:
    """Pair every manipulated FaceForensics++ video of ``methods`` with its target and identity videos.

    Args:
        root: the FF++ root (holding ``original_sequences`` and ``manipulated_sequences``).
        methods: method folder names, e.g. ``["Deepfakes", "FaceSwap"]`` (or one name).
        compression: ``raw``, ``c23`` or ``c40``.
        split: an FF++ split file (``train.json``, ``val.json``, ``test.json``: a JSON list of
            ``[id, id]`` pairs). Keeps the videos whose target and source form a listed pair, in either
            order (``953_974`` and ``974_953`` both belong to ``["953", "974"]``).

    Returns:
        The pairs, sorted by name (method, then target, then source).

    Raises:
        InputError: the root, a method folder or the split file is missing; the split file is not a list of
            id pairs; a video name is not ``<target>_<source>.mp4``; a method folder has no videos; nothing is
            left after the split; or any target or identity video is missing. Missing originals are
            refused here for the whole listing (with their count and the first few paths), because a run
            that fails on them one job at a time wastes the run.
    """
    root = Path(root).expanduser()
    methods = [methods] if isinstance(methods, str) else list(dict.fromkeys(methods))
    if compression not in COMPRESSIONS:
        raise InputError(f"unknown FaceForensics++ compression {compression!r}; use one of {', '.join(COMPRESSIONS)}")
    if not methods:
        raise InputError("no FaceForensics++ methods given (e.g. Deepfakes, Face2Face, FaceSwap, NeuralTextures)")
    if not root.is_dir():
        raise InputError(f"FaceForensics++ root not found: {root}")
    originals = root / "original_sequences" / "youtube" / compression / "videos"
    if not originals.is_dir():
        raise InputError(f"FaceForensics++ original videos folder not found: {originals}")
    allowed = split_pairs(Path(split).expanduser()) if split is not None else None

    pairs: list[VideoPair] = []
    total = 0
    for method in methods:
        folder = root / "manipulated_sequences" / method / compression / "videos"
        if not folder.is_dir():
            present = sorted(p.name for p in (root / "manipulated_sequences").glob("*") if p.is_dir())
            raise InputError(f"FaceForensics++ method folder not found: {folder} "
                             f"(methods present: {', '.join(present) or 'none'})")
        videos = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".mp4")
        if not videos:
            raise InputError(f"no .mp4 videos in FaceForensics++ method folder {folder}")
        total += len(videos)
        for proxy in videos:
            match = _FFPP_VIDEO.fullmatch(proxy.stem)
            if match is None:
                raise InputError(f"unexpected FaceForensics++ video name {proxy.name} in {folder} "
                                 "(expected <target>_<source>.mp4, e.g. 000_003.mp4)")
            target_id, source_id = match.groups()
            if allowed is not None and frozenset((target_id, source_id)) not in allowed:
                continue
            pairs.append(VideoPair(
                name=f"{method}__{compression}__{target_id}_{source_id}",
                method=method,
                compression=compression,
                target=originals / f"{target_id}.mp4",
                proxy=proxy,
                identity=originals / f"{source_id}.mp4",
                output_relpath=Path("refined_sequences", f"{method}-NICe", compression, "videos", proxy.name),
            ))
    if not pairs:
        raise InputError(f"none of the {total} {'/'.join(methods)} {compression} videos under {root} "
                         f"is in split {split}")
    pairs.sort(key=lambda pair: pair.name)
    _refuse_missing_originals(pairs)
    return pairs


def _csv_columns(csv_path: Path, header_line: int, header: list[str]) -> list[str]:
    """The header's column names, lower-cased; refused when one is unknown, missing or named twice."""
    columns = [cell.strip().lower() for cell in header]
    expected = f"(columns: {', '.join(CSV_COLUMNS)}, optional {', '.join(CSV_OPTIONAL_COLUMNS)})"
    if unknown := [c for c in columns if c not in (*CSV_COLUMNS, *CSV_OPTIONAL_COLUMNS)]:
        raise InputError(f"{csv_path} line {header_line}: unknown column(s) {', '.join(map(repr, unknown))} "
                         f"{expected}")
    if missing := [c for c in CSV_COLUMNS if c not in columns]:
        raise InputError(f"{csv_path} line {header_line}: missing column(s) {', '.join(missing)} in the header "
                         f"{expected}")
    if len(set(columns)) < len(columns):
        raise InputError(f"{csv_path} line {header_line}: a column is named twice in the header")
    return columns


def _csv_path(cell: str, column: str, base: Path, where: str) -> Path | None:
    """A cell's video path (relative to the CSV's folder); an empty identity is ``None`` (unknown)."""
    if not cell:
        if column != "identity":
            raise InputError(f"{where}: empty {column}")
        return None
    path = Path(cell).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise InputError(f"{where}: {column} video not found: {path}")
    return path


def csv_pairs(csv_path: str | Path) -> list[VideoPair]:
    """Read pairs from a CSV file for footage outside FaceForensics++.

    The header names the columns ``target``, ``proxy`` and ``identity`` (all required, in any order), and
    optionally ``name`` and ``method``. Relative paths are relative to the CSV file's folder. ``identity``
    may be empty (unknown). ``name`` defaults to the proxy's file name without extension and must be
    unique; ``method`` defaults to ``"external"``. The refined video of a row goes to
    ``refined/<name>.mp4``.

    Example::

        name,target,proxy,identity
        anna_to_ben,originals/ben.mp4,swaps/anna_ben.mp4,originals/anna.mp4

    Returns:
        The pairs in file order.

    Raises:
        InputError: the file is missing or empty, a column is missing or unknown, a row has an empty or
            missing cell, a name is duplicated or not wildcard-safe, or a listed video does not exist. The
            message names the CSV file and the line.
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise InputError(f"pairs CSV not found: {csv_path}")
    base = csv_path.parent
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read pairs CSV {csv_path}: {err}") from None
    lines = [(number, row) for number, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if not lines:
        raise InputError(f"pairs CSV is empty: {csv_path}")
    columns = _csv_columns(csv_path, *lines[0])
    if len(lines) == 1:
        raise InputError(f"pairs CSV has a header but no rows: {csv_path}")

    pairs: list[VideoPair] = []
    seen: dict[str, int] = {}
    for number, row in lines[1:]:
        where = f"{csv_path} line {number}"
        if len(row) != len(columns):
            raise InputError(f"{where}: {len(row)} cells, the header has {len(columns)}")
        cells = {column: cell.strip() for column, cell in zip(columns, row)}
        paths = {column: _csv_path(cells[column], column, base, where) for column in CSV_COLUMNS}
        name = cells.get("name") or paths["proxy"].stem
        if not NAME_PATTERN.fullmatch(name):
            source = "name" if cells.get("name") else "name (from the proxy file name)"
            raise InputError(f"{where}: {source} {name!r} is not usable as a folder name; use letters, digits, "
                             "'.', '_' and '-' (add or fix the name column)")
        if name in seen:
            raise InputError(f"{where}: name {name!r} is already used on line {seen[name]} "
                             "(names must be unique; add or fix the name column)")
        seen[name] = number
        pairs.append(VideoPair(
            name=name,
            method=cells.get("method") or CSV_DEFAULT_METHOD,
            compression=None,
            target=paths["target"],
            proxy=paths["proxy"],
            identity=paths["identity"],
            output_relpath=Path("refined", f"{name}.mp4"),
        ))
    return pairs


def split_pairs(split: Path) -> set[frozenset[str]]:
    """The id pairs of an FF++ split file, each as an unordered set."""
    if not split.is_file():
        raise InputError(f"FaceForensics++ split file not found: {split}")
    try:
        data = json.loads(split.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"FaceForensics++ split file is not valid JSON: {split} ({err})") from None
    if not isinstance(data, list):
        raise InputError(f"FaceForensics++ split file {split} must hold a JSON list of [id, id] pairs, "
                         f"not a {type(data).__name__}")
    pairs = set()
    for index, item in enumerate(data):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(i, str) and i for i in item)):
            raise InputError(f"FaceForensics++ split file {split}: entry {index} is {json.dumps(item)[:60]}, "
                             'expected a pair of id strings like ["953", "974"]')
        pairs.add(frozenset(item))
    if not pairs:
        raise InputError(f"FaceForensics++ split file lists no pairs: {split}")
    return pairs


def _refuse_missing_originals(pairs: list[VideoPair]) -> None:
    """One error for all target/identity videos that are missing, with the count and the first few."""
    needed: dict[Path, list[str]] = {}
    for pair in pairs:
        for role, path in (("target", pair.target), ("identity", pair.identity)):
            needed.setdefault(path, []).append(f"{role} of {pair.method} {pair.proxy.name}")
    missing = sorted(path for path in needed if not path.is_file())
    if not missing:
        return
    gone = set(missing)
    users = sum(1 for pair in pairs if pair.target in gone or pair.identity in gone)
    shown = "; ".join(f"{path} ({needed[path][0]}{', ...' if len(needed[path]) > 1 else ''})"
                      for path in missing[:_LIST_AT_MOST])
    more = f"; and {len(missing) - _LIST_AT_MOST} more" if len(missing) > _LIST_AT_MOST else ""
    raise InputError(f"{len(missing)} original video(s) missing, needed by {users} of {len(pairs)} pairs: "
                     f"{shown}{more}")


def ffpp_encoding(compression: str) -> dict[str, object]:
    """The ``encode:`` settings that reproduce an FF++ compression level (``raw``, ``c23``, ``c40``): the
    codec and CRF of FF++'s own videos of that level (their 4:2:0 pixel format is the writer's own)."""
    if compression not in FFPP_CRF:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    return {"codec": "libx264", "crf": FFPP_CRF[compression]}
