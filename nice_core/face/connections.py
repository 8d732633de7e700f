"""mediapipe's face-mesh connection sets (tessellation, face oval, eyes, lips) without importing mediapipe.

``import mediapipe`` loads its native runtime and, through its drawing helpers, matplotlib: about 2 s at
every job start, paid by the fit, the 3D prior and compositing only to read a few edge lists. The lists are
plain Python data in ``mediapipe/python/solutions/face_mesh_connections.py`` (no imports of its own); this
module loads that file on its own, from the installed package, so the data stay mediapipe's own.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

__all__ = ["face_mesh_connections"]

_FILE = ("python", "solutions", "face_mesh_connections.py")


@lru_cache(maxsize=1)
def face_mesh_connections() -> SimpleNamespace:
    """The module's ``FACEMESH_*`` sets: ``frozenset`` of ``(a, b)`` landmark index pairs, by name.

    Raises:
        ImportError: mediapipe is not installed, or its file is not where mediapipe 0.10 keeps it.
    """
    spec = importlib.util.find_spec("mediapipe")  # finds the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mediapipe is not installed (pip install mediapipe)")
    path = Path(next(iter(spec.submodule_search_locations)), *_FILE)
    if not path.is_file():
        raise ImportError(f"mediapipe's face-mesh connections are not at {path}")
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("_face_mesh_connections", path))
    module.__spec__.loader.exec_module(module)  # a module of its own name: mediapipe's package is not touched
    return SimpleNamespace(**{k: v for k, v in vars(module).items() if k.startswith("FACEMESH_")})
