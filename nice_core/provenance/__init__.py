"""Provenance: the synthetic-media label every written video or image carries, and run records."""

from nice_core.provenance.label import SYNTHETIC_MEDIA_NOTICE, SyntheticLabel, synthetic_label, synthetic_media_metadata

__all__ = ["SYNTHETIC_MEDIA_NOTICE", "SyntheticLabel", "synthetic_label", "synthetic_media_metadata"]
