"""Face clips for the detector: consecutive frames, one shot, the store's geometry."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from nice_core.detect.clips import NoClipError, StoredClips, clip_starts, extract_clips
from nice_core.detect.run import cut_clips
from nice_core.errors import OutputError
from nice_core.face.alignment import warp_crop
from nice_core.io.reader import VideoReader
from nice_core.provenance.watermark import embed
from nice_core.store import FaceStore


def test_windows_need_a_face_in_every_frame_and_one_shot() -> None:
    faces = np.ones(40, bool)
    shots = np.zeros(40, int)
    assert clip_starts(faces, shots, 16, 3) == [0, 12, 24]
    faces[20] = False  # eligible starts: 0..4 and 21..24
    assert clip_starts(faces, shots, 16, 2) == [0, 24]
    shots[30:] = 1  # a cut at 30: frames 21..29 and 30..39 are both shorter than 16
    assert clip_starts(faces, shots, 16, 4) == [0, 1, 3, 4]  # spread over the 5 eligible starts 0..4
    assert clip_starts(faces, shots, 10, 1) == [0]
    with pytest.raises(NoClipError, match="no 25 consecutive frames with a face in one shot \\(longest run: 20 of 40"):
        clip_starts(faces, shots, 25, 2)
    with pytest.raises(NoClipError, match="longest run: 1 of 1"):
        clip_starts(np.ones(1, bool), np.zeros(1, int), 16, 1)  # Celeb-DF's one-frame video


@pytest.mark.slow
def test_clips_are_the_stores_crops_and_fakes_use_their_originals_geometry(flicker_bench: SimpleNamespace,
                                                                           tmp_path: Path) -> None:
    target, proxy, store = flicker_bench.target, flicker_bench.proxy, flicker_bench.store
    out = extract_clips(target, store, tmp_path / "real.h5", length=8, count=3, size=128)
    fake = extract_clips(proxy, store, tmp_path / "fake.h5", length=8, count=3, size=64)
    with FaceStore.open(store) as s:
        crops, faces = s["crops"][()], s["has_face"][()]
    assert faces.all()
    with h5py.File(out) as h5:
        starts, clips = h5["starts"][()].tolist(), h5["clips"][()]
    assert starts == [0, 8, 16] and clips.shape == (3, 8, 128, 128, 3)
    for k, s in enumerate(starts):
        assert np.array_equal(clips[k], crops[s:s + 8])  # the tracker's own crops, frame for frame
    data = StoredClips([out, fake], [0, 1], ["real", "fake"])
    assert len(data) == 6 and data.labels == [0, 0, 0, 1, 1, 1]
    clip = data.clip(4)
    assert tuple(clip.shape) == (3, 8, 64, 64) and 0 <= float(clip.min()) and float(clip.max()) <= 1
    assert data.fingerprint() != StoredClips([out], [0], ["real"]).fingerprint()
    data.close()
    with pytest.raises(OutputError, match="refusing to overwrite an input file"):
        extract_clips(target, store, target, length=8)

    # the watermark probe's clips: the mark goes into the whole frame before it is cropped
    marked = extract_clips(target, store, tmp_path / "marked.h5", length=8, count=1, size=128, mark=0x2A5F1)
    with h5py.File(marked) as h5, VideoReader(target) as reader, FaceStore.open(store) as s:
        first = next(iter(reader))
        expected = warp_crop(embed(first, 0x2A5F1), s["transforms"][0], s.crop_size)
        assert np.array_equal(h5["clips"][0, 0], expected) and not np.array_equal(h5["clips"][0, 0], crops[0])
        assert h5.attrs["mark"] == 0x2A5F1
    # a video too short for one clip: an empty clips file that says why (the study lists it, never drops it)
    reason = cut_clips(target, store, tmp_path / "short.h5", length=len(faces) + 1, count=2, size=32)
    assert reason.startswith(f"no {len(faces) + 1} consecutive frames")
    with h5py.File(tmp_path / "short.h5") as h5:
        assert h5["clips"].shape[0] == 0 and h5.attrs["reason"] == reason
