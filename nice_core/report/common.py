"""What the reports share: the metric catalogue, reading and checking eval JSONs, number formatting.

An *eval JSON* is what ``nice-core eval`` writes for one video: its ``name`` and ``method`` (how the proxy
was made), the input paths, ``frames`` and ``fps``, ``metrics`` of the evaluated video (the NICe output, or
the proxy itself when there is no output yet), ``proxy_metrics`` (the same for the proxy, or null),
``target_e_stab`` (the original footage's own stability error: the aim) and ``definitions`` (one short
text per metric). Each ``metrics`` block holds one number per metric and ``per_frame`` lists; any number
may be null when it cannot be computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nice_core.errors import InputError

#: The note every report carries, whatever it shows.
SYNTHETIC_NOTE = (
    "The videos evaluated here are synthetic media: AI face edits (face swaps), made to build data for "
    "deepfake-detection research. Every video nice-core writes carries a metadata label and an invisible "
    "watermark; check one with nice-core verify."
)

#: Line colours, shared by every chart (and by the screenshot test).
PROXY_COLOR = "#e8590c"
OUTPUT_COLOR = "#1c6dd0"
TARGET_COLOR = "#2b8a3e"


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is named and read.

    Args:
        key: its key in an eval JSON's ``metrics`` block.
        label: a short human name.
        unit: appended to values in charts ("°", "dB"), or "".
        better: ``"lower"``, ``"higher"`` or ``None`` (no direction is implied).
        per_frame: its key in ``metrics["per_frame"]``, or ``None`` when it has no per-frame values.
        short: a column header for wide tables (default: ``label``).
    """

    key: str
    label: str
    unit: str = ""
    better: str | None = None
    per_frame: str | None = None
    short: str = ""

    @property
    def header(self) -> str:
        """The short name with its unit and direction arrow, for table headers."""
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.short or self.label}{unit} {self.arrow}".rstrip()

    @property
    def arrow(self) -> str:
        """"↓" when lower is better, "↑" when higher is, else ""."""
        return {"lower": "↓", "higher": "↑"}.get(self.better or "", "")


#: The known metrics, in report order.
METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("e_stab", "Stability error e_stab", "", "lower", "e_stab", "e_stab"),
    MetricInfo("gaze_error_deg", "Gaze error", "°", "lower", "gaze_error_deg", "gaze"),
    MetricInfo("pose_error_deg", "Head-pose error", "°", "lower", "pose_error_deg", "pose"),
    MetricInfo("landmark_nme_2d", "Landmark NME 2D", "", "lower", "landmark_nme_2d", "NME 2D"),
    MetricInfo("landmark_nme_3d", "Landmark NME 3D", "", "lower", "landmark_nme_3d", "NME 3D"),
    MetricInfo("detail_ratio", "Detail ratio", "", None, "detail", "detail"),
    MetricInfo("identity_distance", "Identity distance", "", "lower", None, "ID dist."),
    MetricInfo("uv_detail_gain", "UV detail transfer", "", "higher", None, "UV detail"),
    MetricInfo("psnr", "PSNR", "dB", "higher", "psnr"),
    MetricInfo("ssim", "SSIM", "", "higher", "ssim"),
)
_BY_KEY = {info.key: info for info in METRICS}
_BY_PER_FRAME = {info.per_frame: info for info in METRICS if info.per_frame}


def metric_info(key: str) -> MetricInfo:
    """The catalogue entry for ``key``; an unknown metric gets a neutral entry named by its key."""
    return _BY_KEY.get(key) or MetricInfo(key, key)


def per_frame_info(key: str) -> MetricInfo:
    """The catalogue entry whose per-frame key is ``key`` (an unknown one gets a neutral entry)."""
    return _BY_PER_FRAME.get(key) or MetricInfo(key, key, per_frame=key)


def ordered_keys(keys: Iterable[str], known: Sequence[str]) -> list[str]:
    """``keys`` without duplicates: the ``known`` ones in catalogue order first, then the others sorted."""
    present = set(keys)
    return [k for k in known if k in present] + sorted(present - set(known))


def metric_keys(blocks: Iterable[Mapping | None]) -> list[str]:
    """The scalar metric keys found in any of the ``metrics`` blocks, in report order."""
    found = (key for block in blocks if block for key in block if key != "per_frame")
    return ordered_keys(found, [info.key for info in METRICS])


def per_frame_keys(blocks: Iterable[Mapping | None]) -> list[str]:
    """The per-frame keys found in any of the ``metrics`` blocks, in report order."""
    found = (key for block in blocks if block for key in (block.get("per_frame") or {}))
    return ordered_keys(found, [info.per_frame for info in METRICS if info.per_frame])


def as_number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` for null, NaN, infinity or anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def decimals_for(values: Iterable[float | None], significant: int = 3) -> int:
    """Decimals that show the largest of ``values`` with ``significant`` digits (0 to 6)."""
    magnitudes = [abs(v) for v in values if v is not None and v != 0]
    if not magnitudes:
        return 2
    return min(6, max(0, significant - 1 - math.floor(math.log10(max(magnitudes)))))


def format_number(value: float | None, decimals: int, missing: str = "—") -> str:
    """``value`` with ``decimals`` decimals and a true minus sign; ``missing`` for ``None``."""
    if value is None:
        return missing
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def describe_fps(fps: object) -> str:
    """``"24000/1001"`` -> ``"23.976 fps (24000/1001)"``; other values as given."""
    if fps is None:
        return "—"
    text = str(fps)
    try:
        num, _, den = text.partition("/")
        rate = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return text
    rounded = f"{rate:.3f}".rstrip("0").rstrip(".")
    return f"{rounded} fps" + (f" ({text})" if "/" in text else "")


def check_eval(data: object, source: str = "eval JSON") -> dict:
    """Return ``data`` if it has the eval JSON's required fields, else raise one :class:`InputError` line."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: not an eval JSON object")
    if "metrics" not in data and "per_frame" in data:
        # `nice-core eval` writes the evaluated video's metrics as top-level keys; gather them in one block.
        from nice_core.metrics.evaluate import video_metrics

        data = {**data, "metrics": video_metrics(data)}
    if data.get("method") is None:
        data = {**data, "method": "unspecified"}
    for key in ("name", "method"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(f"{source}: missing or empty {key!r}")
    for key in ("metrics", "proxy_metrics"):
        block = data.get(key)
        if block is None and key == "proxy_metrics":
            continue
        if not isinstance(block, dict):
            raise InputError(f"{source}: {key!r} must be an object")
        per_frame = block.get("per_frame", {})
        if not isinstance(per_frame, dict) or not all(isinstance(v, list) for v in per_frame.values()):
            raise InputError(f"{source}: {key}.per_frame must map metric names to lists")
    return data


def load_eval_json(path: str | Path) -> dict:
    """Read and check one eval JSON; a missing, unreadable or malformed file raises :class:`InputError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"eval JSON not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read eval JSON {path}: {err}") from None
    return check_eval(data, str(path))
