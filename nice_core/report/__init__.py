"""Per-video and data-set reports (CSV, JSON, self-contained HTML).

This stage is not built yet (tracked in issue 5); the package exists so the layout mirrors the workflow.
"""
