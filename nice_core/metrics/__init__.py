"""Metrics: stability error e_stab, attribute differences, identity distance, detail and fidelity.

This stage is not built yet (tracked in issue 5); the package exists so the layout mirrors the workflow.
"""
