"""The neural identity carrier: the per-video UNet fitted under the aleatoric-uncertainty loss.

This stage is not built yet (tracked in issue 4); the package exists so the layout mirrors the workflow.
"""
