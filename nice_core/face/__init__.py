"""Face crop and alignment: landmarks, subject tracking, smoothed similarity alignment, masks, pose."""

from nice_core.face.alignment import alignment_params, crop_matrix, smooth_params
from nice_core.face.track import TrackConfig, TrackResult, track_video

__all__ = ["TrackConfig", "TrackResult", "alignment_params", "crop_matrix", "smooth_params", "track_video"]
