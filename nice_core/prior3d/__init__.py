"""3D face parameters cached to the per-video HDF5 store (identity, albedo, detail priors).

This stage is not built yet (tracked in issue 4); the package exists so the layout mirrors the workflow.
"""
