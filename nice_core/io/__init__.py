"""Video I/O: probing and validation, decord reading by frame index, ffmpeg writing, atomic outputs."""

from nice_core.io.atomic import atomic_output, refuse_input_overwrite, write_json
from nice_core.io.probe import AudioInfo, VideoProbe, describe_encoding, probe_video, video_encoding
from nice_core.io.reader import VideoReader
from nice_core.io.writer import EncodeOptions, VideoWriter, extract_audio, ffmpeg_exe

__all__ = [
    "AudioInfo",
    "EncodeOptions",
    "VideoProbe",
    "VideoReader",
    "VideoWriter",
    "atomic_output",
    "describe_encoding",
    "extract_audio",
    "ffmpeg_exe",
    "probe_video",
    "refuse_input_overwrite",
    "video_encoding",
    "write_json",
]
