"""Proxy generation: FaceForensics++ inputs, the built-in FaceSwap-style swapper, external swapper wrappers.

This stage is not built yet (tracked in issue 3); the package exists so the layout mirrors the workflow.
"""
