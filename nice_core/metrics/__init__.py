"""Metrics: stability error e_stab, attribute differences, identity distance, detail and fidelity.

:func:`~nice_core.metrics.evaluate.evaluate` computes them all for a video (and its proxy) in one pass.
"""

from nice_core.metrics.evaluate import DEFINITIONS, evaluate, format_table

__all__ = ["DEFINITIONS", "evaluate", "format_table"]
