"""Per-video and data-set reports: self-contained HTML pages with inline SVG charts, CSV and JSON.

* :func:`write_video_report`: one eval JSON (from ``nice-core eval``) -> one HTML page: a metrics table of
  proxy vs NICe output, per-frame charts, frame strips and a side-by-side video of the inputs
  (:mod:`nice_core.report.media`, inline ``data:`` URIs), definitions.
* :func:`aggregate` + :func:`write_dataset_report`: all eval JSONs of a run -> one table with a row per
  method and variant (mean ± std over videos) as CSV, JSON and HTML, with the failed videos listed;
  :func:`failures_from_logs` reads why they failed from the workflow's logs.

Nothing here fetches anything or runs a script in the browser: the pages open offline, as single files.
"""

from nice_core.report.common import METRICS, MetricInfo, load_eval_json
from nice_core.report.dataset import (
    DatasetRow,
    DatasetTable,
    Stat,
    aggregate,
    failures_from_logs,
    write_dataset_csv,
    write_dataset_html,
    write_dataset_json,
    write_dataset_report,
)
from nice_core.report.html import render_video_report, write_video_report

__all__ = [
    "METRICS",
    "DatasetRow",
    "DatasetTable",
    "MetricInfo",
    "Stat",
    "aggregate",
    "failures_from_logs",
    "load_eval_json",
    "render_video_report",
    "write_dataset_csv",
    "write_dataset_html",
    "write_dataset_json",
    "write_dataset_report",
    "write_video_report",
]
