"""The detection study (NICe Sec. 4.4): does refined data help a video-level deepfake detector?

* :mod:`~nice_core.detect.index`: the video-level index (FF++ with its split, refined results, Celeb-DF v2),
  the identity rule, the export to DeepfakeBench's layout (no torch);
* :mod:`~nice_core.detect.i3d`: :class:`I3DConfig`, :class:`I3DResNet` (inflated 3D ResNet), inflation of 2D
  weights;
* :mod:`~nice_core.detect.train`: :func:`train_detector` (balanced, seeded, resumable, chosen on validation),
  :func:`score_clips`;
* :mod:`~nice_core.detect.metrics`: AUC, AP, EER, accuracies, video scores (numpy only).
"""

from nice_core.lazy import lazy_getattr

_EXPORTS = {
    "I3DConfig": "i3d",
    "I3DResNet": "i3d",
    "TrainConfig": "train",
    "VideoEntry": "index",
    "celebdf_entries": "index",
    "check_identities": "index",
    "detection_scores": "metrics",
    "ffpp_entries": "index",
    "inflate_2d_state_dict": "i3d",
    "read_index": "index",
    "refined_entries": "index",
    "score_clips": "train",
    "train_detector": "train",
    "write_index": "index",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
