"""Provenance records: one JSON file per result saying what it was made from and how.

A record (``<results>/work/<video>/provenance.json``, written by the workflow's ``provenance`` rule through
``nice-core provenance``) holds:

* ``inputs`` and ``results``: role -> path, size and SHA-256 of every input file (target, proxy, identity,
  reference) and of every result of the video (store, proxy check, metrics, carrier, refined video);
* ``config``: the run's configuration (the workflow's ``config.yaml`` after command-line overrides; the
  lists of videos and the per-rule resources are left out, the video's own entry is under ``video``);
* ``seeds``: every seed in the configuration, in a JSON result or in a safetensors file's metadata,
  by where it was found (e.g. ``config.carrier.fit.seed``), plus any given with ``--seed``;
* ``versions``: nice-core, Python, the platform, the ffmpeg binary and every installed dependency.

``created`` and ``host`` are the only fields that differ between two runs on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import struct
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from nice_core.errors import InputError
from nice_core.io.digest import file_sha256

SCHEMA = "nice-core-provenance/1"
#: Always recorded besides nice-core's own dependencies (runtime and workflow side).
EXTRA_PACKAGES = ("snakemake", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep",
                  "torch", "torchvision", "numpy", "scipy", "c2pa-python")


def file_entry(path: str | Path) -> dict[str, Any]:
    """Path, size and SHA-256 of one file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"provenance: no such file: {path}")
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def package_versions() -> dict[str, str]:
    """Installed version of nice-core's dependencies and of :data:`EXTRA_PACKAGES` (absent ones left out)."""
    names: set[str] = set(EXTRA_PACKAGES)
    try:
        for requirement in metadata.requires("nice-core") or []:
            if "extra ==" in requirement:
                continue
            match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
            if match:
                names.add(match.group(0))
    except metadata.PackageNotFoundError:
        pass
    versions = {}
    for name in sorted(names, key=str.lower):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def ffmpeg_version() -> str | None:
    """First line of ``ffmpeg -version`` of the binary the package uses, or ``None``."""
    from nice_core.io import ffmpeg_exe

    try:
        done = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.splitlines()[0].strip() if done.stdout else None


def versions() -> dict[str, Any]:
    from nice_core import __version__

    return {"nice-core": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "ffmpeg": ffmpeg_version(), "packages": package_versions()}


def find_seeds(value: Any, prefix: str) -> dict[str, Any]:
    """Every ``seed`` / ``*_seed`` key in nested dicts/lists, as dotted path -> value."""
    found: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if str(key).lower() == "seed" or str(key).lower().endswith("_seed"):
                if isinstance(item, (int, float, str)) and not isinstance(item, bool):
                    found[path] = item
            found.update(find_seeds(item, path))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(find_seeds(item, f"{prefix}[{index}]"))
    return found


def _safetensors_metadata(path: Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file (string values, JSON ones decoded), or empty."""
    try:
        with open(path, "rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            if size > 100_000_000:
                return {}
            header = json.loads(handle.read(size))
    except (OSError, ValueError, struct.error):
        return {}
    meta = {}
    for key, value in (header.get("__metadata__") or {}).items():
        try:
            meta[key] = json.loads(value)
        except (TypeError, ValueError):
            meta[key] = value
    return meta


def seeds_in_file(role: str, path: Path) -> dict[str, Any]:
    """Seeds recorded inside a result: a JSON file's keys, or a safetensors file's metadata."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return find_seeds(json.loads(path.read_text()), role)
        except (OSError, ValueError):
            return {}
    if suffix == ".safetensors":
        return find_seeds(_safetensors_metadata(path), role)
    return {}


def run_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a workflow config that bears on every video's results (no video lists, no resources)."""
    skip = {"videos", "ffpp", "pairs_csv", "benchmarks", "resources"}
    return {key: value for key, value in config.items() if key not in skip}


def build_record(name: str, inputs: dict[str, str | Path], results: dict[str, str | Path],
                 config: dict[str, Any] | None = None, seeds: dict[str, Any] | None = None,
                 video: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance record of one video's results (see the module docstring)."""
    config = config or {}
    found = find_seeds(config, "config")
    for role, path in results.items():
        found.update(seeds_in_file(role, Path(path)))
    found.update(seeds or {})
    return {
        "schema": SCHEMA,
        "name": name,
        "video": video or {},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": socket.gethostname(),
        "inputs": {role: file_entry(path) for role, path in inputs.items()},
        "results": {role: file_entry(path) for role, path in results.items()},
        "config": config,
        "seeds": dict(sorted(found.items())),
        "versions": versions(),
    }


def write_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write a record as indented JSON, atomically (a temporary sibling, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        role, sep, rest = value.partition("=")
        if not sep or not role or not rest:
            raise InputError(f"{what} must be ROLE=VALUE, got {value!r}")
        pairs[role] = rest
    return pairs


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_provenance(args: argparse.Namespace, cleanup: Any = None) -> int:
    if args.config_json is not None:
        try:
            config = json.loads(args.config_json)
        except ValueError as err:
            raise InputError(f"--config-json is not JSON: {err}") from None
    elif args.config is not None:
        import yaml

        try:
            config = run_config(yaml.safe_load(Path(args.config).read_text()) or {})
        except (OSError, yaml.YAMLError) as err:
            from nice_core.errors import yaml_error_line

            raise InputError(f"cannot read {args.config}: {yaml_error_line(err)}") from None
    else:
        config = {}
    video = json.loads(args.video_json) if args.video_json else None
    seeds = {key: _scalar(value) for key, value in _pairs(args.seed, "--seed").items()}
    record = build_record(args.name, _pairs(args.input, "--input"), _pairs(args.result, "--result"),
                          config=config, seeds=seeds, video=video)
    write_record(args.output, record)
    print(f"provenance of {args.name}: {len(record['inputs'])} input(s), {len(record['results'])} result(s), "
          f"{len(record['seeds'])} seed(s) -> {args.output}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nice-core provenance`` on the CLI's subparsers."""
    parser = sub.add_parser("provenance", help="write a provenance record (config, versions, seeds, sha256 of "
                                               "inputs and results) of one video's results as JSON")
    parser.add_argument("-o", "--output", required=True, type=Path, help="the record to write (JSON)")
    parser.add_argument("--name", required=True, help="the video's name in the run")
    parser.add_argument("--input", action="append", metavar="ROLE=PATH", help="an input file (repeatable)")
    parser.add_argument("--result", action="append", metavar="ROLE=PATH", help="a result file (repeatable)")
    parser.add_argument("--config", type=Path, help="the run's config.yaml (video lists and resources left out)")
    parser.add_argument("--config-json", help="the run's config as JSON (instead of --config)")
    parser.add_argument("--video-json", help="the video's own entry (target, proxy, method...) as JSON")
    parser.add_argument("--seed", action="append", metavar="NAME=VALUE", help="a seed not found in the "
                                                                              "config or results (repeatable)")
    parser.set_defaults(func=cmd_provenance)
    return parser
