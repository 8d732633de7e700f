"""The report of a whole run: the data-set table plus one page per video, from whatever metrics exist.

Used by ``nice-core report`` and by the workflow, both when every video succeeded (the ``report`` rule) and
when some failed (Snakemake's ``onerror``), so the failed videos are listed with their error lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nice_core.report.common import load_eval_json
from nice_core.report.dataset import (
    aggregate,
    failures_from_logs,
    write_dataset_csv,
    write_dataset_html,
    write_dataset_json,
)
from nice_core.report.html import write_video_report


def build_report(metrics_files: Sequence[str | Path], out_html: str | Path, videos_dir: str | Path | None = None,
                 expected: Iterable[str] = (), log_dir: str | Path | None = None,
                 log_names: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write ``out_html`` (the data-set page) with ``.csv``/``.json`` beside it, and per-video pages.

    Args:
        metrics_files: eval JSONs (from ``nice-core eval``) that exist.
        out_html: the data-set page.
        videos_dir: where to write ``<name>.html`` per video (default: ``<out_html's folder>/videos``).
        expected: names of every video of the run; those without metrics are listed as failures.
        log_dir: the workflow's log folder, searched for each failure's ``nice-core: error:`` line.
        log_names: the log names of each video (default: its own name; the workflow adds its target's, whose
            probe and tracking jobs log under the target).
    """
    out_html = Path(out_html)
    evals = [load_eval_json(path) for path in metrics_files]
    have = {e["name"] for e in evals}
    missing = [name for name in expected if name not in have]
    if missing and log_dir and Path(log_dir).is_dir():
        failures = failures_from_logs(log_dir, missing, log_names)
    else:
        failures = [{"name": name, "rule": "?", "message": "no metrics (the video's jobs did not finish)"}
                    for name in missing]
    table = aggregate(evals, failures)
    videos_dir = Path(videos_dir) if videos_dir is not None else out_html.parent / "videos"
    for data in evals:
        write_video_report(data, videos_dir / f"{data['name']}.html")
    write_dataset_csv(table, out_html.with_suffix(".csv"))
    write_dataset_json(table, out_html.with_suffix(".json"))
    return write_dataset_html(table, out_html)
