"""What a workflow run processes: every video named in ``config.yaml``, as one :class:`VideoSpec` each.

Four sources, all optional, combined (names must not clash):

* ``videos:``: ``name: path`` (the proxy is generated) or ``name: {target, proxy, identity}``;
* ``ffpp:``: a FaceForensics++ tree (:func:`~nice_core.inputs.ffpp.ffpp_pairs`);
* ``pairs_csv:``: a CSV of target/proxy/identity paths (:func:`~nice_core.inputs.ffpp.csv_pairs`);
* ``benchmarks:``: folders from ``nice-core bench make``: target, proxy and the clean reference.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from nice_core.errors import InputError
from nice_core.inputs.ffpp import NAME_PATTERN, VideoPair, csv_pairs, ffpp_pairs


@dataclass(frozen=True)
class VideoSpec:
    """One video of a run.

    Args:
        name: unique name (a Snakemake wildcard and a folder name).
        target: the original video.
        proxy: a given per-frame swapped video, or ``None`` to generate one.
        identity: the identity image/video for generation; ``None`` means a self-swap (the target itself).
        reference: a clean ground-truth video for fidelity metrics (benchmarks), or ``None``.
        method: the swap method's name, for reports and the results layout.
        output_relpath: where the refined video goes, relative to the results' output root.
        compression: the FF++ compression level (``raw``, ``c23``, ``c40``) of an FF++ pair, else ``None``.
    """

    name: str
    target: Path
    proxy: Path | None
    identity: Path | None
    reference: Path | None
    method: str
    output_relpath: Path
    compression: str | None = None

    @property
    def generated_proxy(self) -> bool:
        return self.proxy is None

    @property
    def target_key(self) -> str:
        """The name of the target's own work folder (:func:`target_key`)."""
        return target_key(self.target)


def target_key(target: str | Path) -> str:
    """The name of a target video's own work folder, shared by every video of that target file (FF++: the
    original of four or five methods), so it is probed and tracked once: the file's stem made a valid name,
    and a digest of its absolute path (two targets of one stem in different folders stay apart; a link is a
    file of its own, not the file it points to)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(target).stem).lstrip("._-") or "target"
    digest = hashlib.sha256(os.path.abspath(target).encode()).hexdigest()[:10]
    return f"{stem}-{digest}"


def _from_pair(pair: VideoPair) -> VideoSpec:
    return VideoSpec(pair.name, pair.target, pair.proxy, pair.identity, None, pair.method, pair.output_relpath,
                     pair.compression)


def _resolve(base: Path, value: str | None) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _from_videos(section: dict, base: Path, generator: str) -> list[VideoSpec]:
    specs = []
    for name, entry in (section or {}).items():
        name = str(name)
        if entry in (None, ""):
            continue  # `name: null` removes an entry another config file brought (Snakemake merges videos:)
        if isinstance(entry, dict):
            unknown = set(entry) - {"target", "proxy", "identity", "reference", "method"}
            if unknown or "target" not in entry:
                raise InputError(f"videos: {name}: needs 'target' and may have proxy, identity, reference, method;"
                                 f" got {sorted(entry)}")
            target = _resolve(base, entry["target"])
            proxy, identity = _resolve(base, entry.get("proxy")), _resolve(base, entry.get("identity"))
            reference = _resolve(base, entry.get("reference"))
            method = str(entry.get("method") or ("given" if proxy else generator))
        else:
            target, proxy, identity, reference, method = _resolve(base, entry), None, None, None, generator
        specs.append(VideoSpec(name, target, proxy, identity, reference, method,
                               Path("refined") / f"{name}.mp4"))
    return specs


def _from_benchmarks(folders: list, base: Path) -> list[VideoSpec]:
    specs = []
    for folder in folders or []:
        folder = _resolve(base, folder)
        missing = [n for n in ("target.mp4", "proxy.mp4", "clean.mp4") if not (folder / n).is_file()]
        if missing:
            raise InputError(f"benchmark folder {folder} lacks {', '.join(missing)} (make it with "
                             "`nice-core bench make SRC OUTDIR`)")
        name = f"bench__{folder.name}"
        specs.append(VideoSpec(name, folder / "target.mp4", folder / "proxy.mp4", None, folder / "clean.mp4",
                               "benchmark", Path("benchmark") / folder.name / "refined.mp4"))
    return specs


def workflow_videos(config: dict, base: str | Path = ".") -> dict[str, VideoSpec]:
    """All videos of a run, by name, from a loaded ``config.yaml`` (relative paths from ``base``).

    Raises:
        InputError: a clashing or unsafe name, a missing file, or nothing to do.
    """
    base = Path(base)
    generator = str((config.get("proxy") or {}).get("generator", "swap"))
    specs = _from_videos(config.get("videos") or {}, base, generator)
    ffpp = config.get("ffpp") or {}
    if ffpp.get("root"):
        specs += [_from_pair(p) for p in ffpp_pairs(_resolve(base, ffpp["root"]), ffpp.get("methods") or [],
                                                    ffpp.get("compression", "c23"),
                                                    _resolve(base, ffpp.get("split")))]
    if config.get("pairs_csv"):
        specs += [_from_pair(p) for p in csv_pairs(_resolve(base, config["pairs_csv"]))]
    specs += _from_benchmarks(config.get("benchmarks") or [], base)
    out: dict[str, VideoSpec] = {}
    for spec in specs:
        if not NAME_PATTERN.fullmatch(spec.name):
            raise InputError(f"video name {spec.name!r} must use only letters, digits, '.', '_' and '-'")
        if spec.name in out:
            raise InputError(f"video name {spec.name!r} is used twice")
        out[spec.name] = spec
    missing = [str(p) for s in out.values() for p in (s.target, s.proxy, s.identity, s.reference)
               if p is not None and not p.exists()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"{len(missing)} input file(s) missing: {', '.join(missing[:3])}{more}")
    if not out and not (config.get("detector") or {}).get("index"):  # a run of the detection study alone is fine
        raise InputError("config.yaml names no videos (videos:, ffpp:, pairs_csv: or benchmarks:) and no "
                         "detection study (detector.index)")
    return out


def warm_start_sources(videos: dict[str, VideoSpec]) -> dict[str, str]:
    """For each video whose target an earlier video of the run (in its order) has, that first video's name.

    The workflow's warm start (``carrier.warm_start``): the first video of a target (FF++: its first
    method) is fitted in full, and the fit of every other video of that target starts from its carrier.
    """
    first: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, spec in videos.items():
        key = spec.target_key
        if key in first:
            sources[name] = first[key]
        else:
            first[key] = name
    return sources


def output_encoding(spec: VideoSpec, encode: dict) -> dict:
    """The ``encode:`` settings of ``spec``'s refined video: ``encode`` as configured, except that an FF++
    pair's is encoded like the FF++ videos beside it while ``encode.match_ffpp`` holds
    (:func:`~nice_core.inputs.ffpp.ffpp_encoding`)."""
    settings = dict(encode)
    if spec.compression is not None and settings.get("match_ffpp", True):
        from nice_core.inputs.ffpp import ffpp_encoding

        settings.update(ffpp_encoding(spec.compression))
    return settings
