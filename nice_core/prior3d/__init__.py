"""The 3D prior stage (NICe Sec. 3.2.2, 3.4.2): per-frame UV geometry, lighting, albedo, detail, shape and
identity of the target, the proxy and the identity input, cached in ``prior3d.h5``
(:mod:`~nice_core.prior3d.stage`), and the carrier's 3D losses on top of it (:mod:`~nice_core.prior3d.losses`).
"""

#: Where the carrier's detail loss takes the identity's static detail from: the proxy aggregated in UV, the
#: identity input (the proxy for a self-swap, which has none), or both (visibility-weighted mean).
DETAIL_SOURCES = ("proxy", "identity", "both")
