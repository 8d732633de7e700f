"""Proxy generation: the per-frame swapped videos that the carrier refines.

* :mod:`~nice_core.proxy.dataset`: FaceForensics++ trees and CSV lists of (target, proxy, identity);
* :mod:`~nice_core.proxy.sources`: every video a workflow run processes, from ``config.yaml``;
* :mod:`~nice_core.proxy.check`: checking a proxy against its target (count, fps, size, frame offset);
* :mod:`~nice_core.proxy.swap`: the built-in FaceSwap-style per-frame swapper;
* :mod:`~nice_core.proxy.external`: external swappers (FSGAN, ...) through a command template;
* :mod:`~nice_core.proxy.benchmark`: the synthetic flicker benchmark with ground truth.
"""

from nice_core.proxy.check import ProxyCheck, check_proxy
from nice_core.proxy.dataset import VideoPair, csv_pairs, ffpp_pairs
from nice_core.proxy.sources import VideoSpec, workflow_videos

__all__ = ["ProxyCheck", "VideoPair", "VideoSpec", "check_proxy", "csv_pairs", "ffpp_pairs", "workflow_videos"]
