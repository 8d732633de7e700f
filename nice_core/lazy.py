"""Lazy package exports (PEP 562): a package's public names, imported from their submodules on first use.

So importing a light submodule (``nice_core.carrier.config``, ``nice_core.inputs.videos``) does not import
its package's heavy siblings (torch, PyAV) through the package's ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a submodule) for ``name``."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
