"""Proxies: the per-frame swapped videos that the carrier refines.

* :mod:`~nice_core.proxy.check`: checking a proxy against its target (count, fps, size, frame offset);
* :mod:`~nice_core.proxy.swap`: the built-in FaceSwap-style per-frame swapper;
* :mod:`~nice_core.proxy.external`: external swappers (FSGAN, ...) through a command template.

Where a run's proxies come from (FaceForensics++ trees, CSV lists, ``config.yaml``) is :mod:`nice_core.inputs`;
synthetic clips with a known answer (``nice-core bench make``) are :mod:`nice_core.groundtruth`.
"""

from nice_core.lazy import lazy_getattr

#: Public name -> its submodule, loaded on first use (PEP 562), so reading one part does not import the
#: video readers behind the others.
_EXPORTS = {
    "ProxyCheck": "check",
    "check_proxy": "check",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
