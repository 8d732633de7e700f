"""The data-set report: every eval JSON of a run in one table, as CSV, JSON and HTML.

Rows are methods, as in the paper's Tables 1 and 2. For every method ``M`` present (the eval JSON's
``method``: the FF++ folder name, ``swap``, ``benchmark``, ...):

* ``M (proxy)``, from the ``proxy_metrics`` of its videos, and ``M + NICe``, from their ``metrics``;
* ``M`` alone, from the ``metrics`` of its videos evaluated without proxy metrics (the proxy itself when
  no NICe output exists yet, or an output whose proxy was not given).

A first row, ``original footage``, holds the mean ``target_e_stab`` over the distinct targets: the
stability the outputs aim for. Methods are sorted by name (case-insensitive).

Every cell is the mean ± standard deviation over the row's videos. The standard deviation is the
population one (``ddof=0``, numpy's default), so one video gives ± 0. Null values are left out of their
cell only; a cell's own count ``n`` is kept, and shown when it is below the row's number of videos.

Videos that failed are listed with the rule that failed and its error line; :func:`failures_from_logs`
finds those lines in the workflow's logs.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nice_core import __version__
from nice_core.errors import InputError
from nice_core.io.atomic import atomic_output, write_json
from nice_core.report.common import (
    SYNTHETIC_NOTE,
    as_number,
    check_eval,
    decimals_for,
    format_number,
    metric_info,
    metric_keys,
)

#: The prefix of the CLI's one-line error message (see :mod:`nice_core.cli`).
ERROR_PREFIX = "nice-core: error: "

#: Row variants, in the order a method's rows are listed.
VARIANTS = ("proxy", "nice", "video")


@dataclass(frozen=True)
class Stat:
    """Mean and population standard deviation of one metric over ``n`` videos (``None`` when ``n`` is 0)."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        """The statistics of the known values among ``values`` (nulls, NaN and infinities left out)."""
        known = [v for v in (as_number(x) for x in values) if v is not None]
        if not known:
            return cls(None, None, 0)
        mean = math.fsum(known) / len(known)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in known) / len(known))
        return cls(mean, std, len(known))


@dataclass(frozen=True)
class DatasetRow:
    """One table row: a method's proxies, its NICe outputs, or its videos evaluated alone.

    Args:
        label: the row's name: ``"M (proxy)"``, ``"M + NICe"``, ``"M"`` or ``"original footage"``.
        method: the method ``M`` (``None`` for the original-footage row).
        variant: ``"proxy"``, ``"nice"``, ``"video"`` or ``"original"``.
        videos: names of the videos in the row.
        stats: one :class:`Stat` per metric key.
        encodings: how the row's videos are encoded (``describe_encoding`` lines) and how many videos each.
    """

    label: str
    method: str | None
    variant: str
    videos: tuple[str, ...]
    stats: dict[str, Stat]
    encodings: tuple[tuple[str, int], ...] = ()

    def encoding_text(self) -> str:
        """``h264 yuv420p CRF 23`` or, mixed, ``h264 yuv420p CRF 23 (3); h264 yuv420p CRF 18 (1)``."""
        if len(self.encodings) == 1:
            return self.encodings[0][0]
        return "; ".join(f"{label} ({count})" for label, count in self.encodings)

    @property
    def n_videos(self) -> int:
        return len(self.videos)


@dataclass(frozen=True)
class DatasetTable:
    """The aggregated data set: rows, the metric columns, failures and the metric definitions."""

    rows: tuple[DatasetRow, ...]
    metrics: tuple[str, ...]
    failures: tuple[dict, ...] = ()
    definitions: dict[str, str] = field(default_factory=dict)

    def row(self, label: str) -> DatasetRow:
        """The row called ``label`` (``KeyError`` if there is none)."""
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(label)

    def to_dict(self) -> dict:
        """Plain data for the JSON report."""
        return {
            "generator": f"nice-core {__version__}",
            "std": "population standard deviation over videos (ddof=0); nulls left out per cell",
            "metrics": list(self.metrics),
            "rows": [
                {"label": r.label, "method": r.method, "variant": r.variant, "n_videos": r.n_videos,
                 "videos": list(r.videos), "encodings": dict(r.encodings),
                 "stats": {k: {"mean": s.mean, "std": s.std, "n": s.n} for k, s in r.stats.items()}}
                for r in self.rows
            ],
            "failures": [dict(f) for f in self.failures],
            "definitions": dict(self.definitions),
            "note": SYNTHETIC_NOTE,
        }


def _count_encoding(encodings: dict, key: tuple[str, str], info: object) -> None:
    if isinstance(info, Mapping):
        from nice_core.io.probe import describe_encoding

        encodings.setdefault(key, []).append(describe_encoding(info))


def _row_label(method: str, variant: str) -> str:
    return {"proxy": f"{method} (proxy)", "nice": f"{method} + NICe", "video": method}[variant]


def _check_failure(failure: object) -> dict:
    if not isinstance(failure, Mapping) or not failure.get("name") or "message" not in failure:
        raise InputError(f"a failure needs a 'name' and a 'message', got {failure!r}")
    return {"name": str(failure["name"]), "rule": failure.get("rule"), "message": str(failure["message"]),
            **{k: v for k, v in failure.items() if k not in ("name", "rule", "message")}}


def aggregate(eval_jsons: Sequence[Mapping], failures: Sequence[Mapping] = ()) -> DatasetTable:
    """Aggregate eval JSONs into one table (see the module docstring for the rows).

    Args:
        eval_jsons: one eval JSON per evaluated video (as read by
            :func:`~nice_core.report.common.load_eval_json`).
        failures: failed videos, each ``{"name", "rule", "message"}`` (other keys are kept), for example
            from :func:`failures_from_logs`.

    Raises:
        InputError: an eval JSON lacks a required field, or one video appears twice under one method.
    """
    groups: dict[tuple[str, str], list[tuple[str, Mapping]]] = {}
    encodings: dict[tuple[str, str], list[str]] = {}
    seen: set[tuple[str, str]] = set()
    targets: dict[str, float | None] = {}
    definitions: dict[str, str] = {}
    blocks: list[Mapping] = []
    for i, raw in enumerate(eval_jsons):
        data = check_eval(raw, f"eval JSON #{i + 1} ({raw.get('name', '?') if isinstance(raw, Mapping) else '?'})")
        name, method = data["name"], data["method"]
        if (method, name) in seen:
            raise InputError(f"video {name!r} of method {method!r} is given twice")
        seen.add((method, name))
        proxy = data.get("proxy_metrics")
        if proxy is not None:
            groups.setdefault((method, "proxy"), []).append((name, proxy))
            groups.setdefault((method, "nice"), []).append((name, data["metrics"]))
            blocks.append(proxy)
            _count_encoding(encodings, (method, "proxy"), data.get("proxy_encoding"))
            _count_encoding(encodings, (method, "nice"), data.get("encoding"))
        else:
            groups.setdefault((method, "video"), []).append((name, data["metrics"]))
            _count_encoding(encodings, (method, "video"), data.get("encoding"))
        blocks.append(data["metrics"])
        target = str(data.get("target") or name)
        if targets.get(target) is None:
            targets[target] = as_number(data.get("target_e_stab"))
        for key, text in (data.get("definitions") or {}).items():
            definitions.setdefault(str(key), str(text))

    metrics = tuple(metric_keys(blocks))
    rows: list[DatasetRow] = []
    known_targets = {t: v for t, v in targets.items() if v is not None}
    if known_targets:
        rows.append(DatasetRow("original footage", None, "original", tuple(sorted(known_targets)),
                               {"e_stab": Stat.of(known_targets.values())}))
    for method in sorted({m for m, _ in groups}, key=lambda m: (m.casefold(), m)):
        for variant in VARIANTS:
            members = groups.get((method, variant))
            if not members:
                continue
            stats = {key: Stat.of(block.get(key) for _, block in members) for key in metrics}
            found = encodings.get((method, variant), [])
            counted = tuple(sorted(((e, found.count(e)) for e in set(found)), key=lambda item: (-item[1], item[0])))
            rows.append(DatasetRow(_row_label(method, variant), method, variant,
                                   tuple(name for name, _ in members), stats, counted))
    return DatasetTable(tuple(rows), metrics, tuple(_check_failure(f) for f in failures), definitions)


#: Lines the CLI prints when it stops early, besides ``nice-core: error: ...``.
STOP_PREFIXES = ("nice-core: terminated", "nice-core: interrupted")


def _failure_lines(lines: list[str]) -> list[str]:
    """The messages of a log's lines that say why a command stopped: every ``nice-core: error:`` line (the
    CLI's own and argparse's), a SIGTERM or Ctrl-C, and the last line of a Python traceback (a crash)."""
    found = []
    in_traceback = False
    for line in (raw.rstrip("\r\n") for raw in lines):
        if line.startswith(ERROR_PREFIX):
            found.append(line[len(ERROR_PREFIX):].strip())
        elif line.startswith(STOP_PREFIXES):
            found.append(line.removeprefix("nice-core: ").strip())
        elif line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and line and not line.startswith((" ", "\t")):
            found.append(f"crashed: {line.strip()}")
            in_traceback = False
    return found


def failures_from_logs(log_dir: str | Path, names: Iterable[str],
                       log_names: Mapping[str, Sequence[str]] | None = None) -> list[dict]:
    """Find why videos failed in the workflow's logs, ``<log_dir>/<rule>/<name>.log``.

    For each name, every rule folder's ``<name>.log`` (and ``<other>.log`` for the other names
    ``log_names`` gives it: the workflow's per-target jobs log under the target) is read; the last line
    that says why the command stopped (:func:`_failure_lines`: ``nice-core: error: ...``, a SIGTERM, a
    traceback's last line) is the message, the folder the rule. When several logs hold such a line, the
    most recently written one wins (an older failure may have been fixed by a rerun). A video with no such
    line still gets an entry (rule ``None`` when it has no log at all), so no failure goes unlisted.

    Args:
        log_dir: the workflow's log folder (``results/logs``).
        names: the videos to explain, typically those without an eval JSON.
        log_names: name -> the names its logs go by (default: the name alone).

    Returns:
        One ``{"name", "rule", "message", "log"}`` dict per name, in the given order (``log``: the log
        read, or ``None``).

    Raises:
        InputError: ``log_dir`` is not a folder.
    """
    log_dir = Path(log_dir)
    names = list(names)
    if not names:
        return []
    if not log_dir.is_dir():
        raise InputError(f"log folder not found: {log_dir}")
    rules = sorted(p for p in log_dir.iterdir() if p.is_dir())
    failures = []
    for name in names:
        aliases = (log_names or {}).get(name) or [name]
        logs = [rule / f"{alias}.log" for rule in rules for alias in aliases if (rule / f"{alias}.log").is_file()]
        found: list[tuple[float, Path, str]] = []
        for log in logs:
            errors = _failure_lines(log.read_text(errors="replace").splitlines())
            if errors:
                found.append((log.stat().st_mtime, log, errors[-1]))
        if found:
            _, log, message = max(found, key=lambda item: (item[0], str(item[1])))
            failures.append({"name": name, "rule": log.parent.name, "message": message, "log": str(log)})
        elif logs:
            log = max(logs, key=lambda p: (p.stat().st_mtime, str(p)))
            failures.append({"name": name, "rule": log.parent.name, "log": str(log),
                             "message": f"no {ERROR_PREFIX.strip()!r} line in the logs; see {log}"})
        else:
            failures.append({"name": name, "rule": None, "log": None,
                             "message": f"no eval output and no log in {log_dir}"})
    return failures


# -- writers ---------------------------------------------------------------------------------------------------


def csv_text(table: DatasetTable) -> str:
    """The table as CSV: ``row, method, variant, n_videos``, then ``<metric>_mean, _std, _n`` per metric, then
    ``encoding`` (how the row's videos are compressed, :meth:`DatasetRow.encoding_text`).

    Numbers are written in full precision; an empty field is a null.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "method", "variant", "n_videos"]
                    + [f"{key}_{part}" for key in table.metrics for part in ("mean", "std", "n")] + ["encoding"])
    for row in table.rows:
        values: list[object] = [row.label, row.method or "", row.variant, row.n_videos]
        for key in table.metrics:
            stat = row.stats.get(key)
            if stat is None:
                values += ["", "", ""]
            else:
                values += ["" if stat.mean is None else repr(stat.mean), "" if stat.std is None else repr(stat.std),
                           stat.n]
        writer.writerow([*values, row.encoding_text()])
    return buffer.getvalue()


def write_dataset_csv(table: DatasetTable, path: str | Path) -> Path:
    """Write :func:`csv_text` atomically; return the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(csv_text(table), encoding="utf-8")
    return path


def write_dataset_json(table: DatasetTable, path: str | Path) -> Path:
    """Write :meth:`DatasetTable.to_dict` atomically; return the path."""
    path = Path(path)
    write_json(path, table.to_dict())
    return path


def _cell(stat: Stat | None, decimals: int, n_videos: int, css: str = "") -> dict:
    """One table cell: mean and standard deviation at the column's precision, and n when some videos of the
    row lack the value."""
    if stat is None or stat.mean is None:
        return {"mean": None}
    return {"mean": format_number(stat.mean, decimals), "std": format_number(stat.std, decimals),
            "n": stat.n if stat.n < n_videos else None, "css": css}


def _compare(key: str, row: DatasetRow, rows_by_key: dict[tuple[str | None, str], DatasetRow], decimals: int) -> str:
    """" better"/" worse" for a NICe cell against the same method's proxy row, else "".

    Only differences that show at the table's precision are coloured.
    """
    info = metric_info(key)
    proxy = rows_by_key.get((row.method, "proxy"))
    if row.variant != "nice" or proxy is None or not info.better:
        return ""
    before, after = proxy.stats.get(key), row.stats.get(key)
    if not before or not after or before.mean is None or after.mean is None:
        return ""
    if format_number(before.mean, decimals) == format_number(after.mean, decimals):
        return ""
    improved = after.mean < before.mean if info.better == "lower" else after.mean > before.mean
    return " better" if improved else " worse"


def html_text(table: DatasetTable, title: str = "NICe data-set report") -> str:
    """The table, failures and definitions as one self-contained HTML page (no script, nothing fetched)."""
    from nice_core.report.html import definition_items, render

    rows_by_key = {(r.method, r.variant): r for r in table.rows}
    decimals = {key: decimals_for(s.mean for r in table.rows if (s := r.stats.get(key)) is not None)
                for key in table.metrics}
    rows = []
    previous_method: str | None = None
    for row in table.rows:
        css = "ref" if row.variant == "original" else ""
        if row.method is not None and row.method != previous_method and previous_method is not None:
            css = "group"  # a rule between methods
        previous_method = row.method or previous_method
        cells = [_cell(row.stats.get(k), decimals[k], row.n_videos, _compare(k, row, rows_by_key, decimals[k]))
                 for k in table.metrics]
        rows.append({"label": row.label, "n_videos": row.n_videos, "cells": cells, "css": css,
                     "encoding": row.encoding_text()})
    n_videos = len({(r.method, v) for r in table.rows if r.variant in ("nice", "video") for v in r.videos})
    return render("dataset.html.j2", title=title, n_videos=n_videos, failures=table.failures, rows=rows,
                  columns=[{"label": metric_info(k).label, "header": metric_info(k).header} for k in table.metrics],
                  definitions=definition_items(table.definitions))


def write_dataset_html(table: DatasetTable, path: str | Path, title: str = "NICe data-set report") -> Path:
    """Write :func:`html_text` atomically; return the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(html_text(table, title), encoding="utf-8")
    return path


def write_dataset_report(table: DatasetTable, out_dir: str | Path, stem: str = "dataset") -> dict[str, Path]:
    """Write ``<out_dir>/<stem>.csv``, ``.json`` and ``.html``; return them as ``{"csv", "json", "html"}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "csv": write_dataset_csv(table, out_dir / f"{stem}.csv"),
        "json": write_dataset_json(table, out_dir / f"{stem}.json"),
        "html": write_dataset_html(table, out_dir / f"{stem}.html"),
    }
