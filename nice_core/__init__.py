"""nice_core: the Neural Identity Carrier (NICe) pipeline library.

Subpackages mirror the workflow's stages: :mod:`~nice_core.io` (probe, read, write),
:mod:`~nice_core.face` (tracking and alignment), :mod:`~nice_core.proxy`, :mod:`~nice_core.prior3d`,
:mod:`~nice_core.carrier`, :mod:`~nice_core.composite`, :mod:`~nice_core.metrics`,
:mod:`~nice_core.report` and :mod:`~nice_core.provenance`. The per-video HDF5 store is
:mod:`nice_core.store`.
"""

__version__ = "0.1.0"
