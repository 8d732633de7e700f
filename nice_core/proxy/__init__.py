"""Proxy generation: the per-frame swapped videos that the carrier refines.

* :mod:`~nice_core.proxy.dataset`: FaceForensics++ trees and CSV lists of (target, proxy, identity);
* :mod:`~nice_core.proxy.sources`: every video a workflow run processes, from ``config.yaml``;
* :mod:`~nice_core.proxy.check`: checking a proxy against its target (count, fps, size, frame offset);
* :mod:`~nice_core.proxy.swap`: the built-in FaceSwap-style per-frame swapper;
* :mod:`~nice_core.proxy.external`: external swappers (FSGAN, ...) through a command template;
* :mod:`~nice_core.proxy.benchmark`: the synthetic flicker benchmark with ground truth.
"""

from nice_core.lazy import lazy_getattr

#: Public name -> its submodule, loaded on first use (PEP 562): the workflow reads the run's video list
#: (:mod:`~nice_core.proxy.sources`) without importing the video readers behind the proxy check.
_EXPORTS = {
    "ProxyCheck": "check",
    "VideoPair": "dataset",
    "VideoSpec": "sources",
    "check_proxy": "check",
    "csv_pairs": "dataset",
    "ffpp_pairs": "dataset",
    "workflow_videos": "sources",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
