"""The detection study's index: FF++ with its split, refined results, Celeb-DF's test list, the identity
rule, and the export to DeepfakeBench's layout. Empty files stand for videos (no video is opened)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nice_core.detect.index import (
    VideoEntry,
    celebdf_entries,
    check_identities,
    export_deepfakebench,
    ffpp_entries,
    read_index,
    refined_entries,
    write_index,
)
from nice_core.errors import InputError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.fixture
def ffpp(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    root = tmp_path / "ffpp"
    for i in ("000", "003", "010", "020", "030", "040"):
        touch(root / "original_sequences/youtube/c23/videos" / f"{i}.mp4")
    for name in ("000_003", "003_000", "010_020", "020_010", "030_040"):
        touch(root / "manipulated_sequences/FaceSwap/c23/videos" / f"{name}.mp4")
    splits = {}
    for split, pairs in {"train": [["000", "003"]], "val": [["010", "020"]], "test": [["030", "040"]]}.items():
        splits[split] = tmp_path / f"{split}.json"
        splits[split].write_text(json.dumps(pairs))
    return root, splits


def test_ffpp_entries_follow_the_official_split(ffpp) -> None:
    root, splits = ffpp
    entries = ffpp_entries(root, ["FaceSwap"], "c23", splits)
    by_id = {e.id: e for e in entries}
    assert len(entries) == 6 + 5
    assert by_id["ffpp/original/c23/000"].split == "train" and by_id["ffpp/original/c23/000"].label == 0
    fake = by_id["ffpp/FaceSwap/c23/003_000"]  # the pair [000, 003] stands for both orders
    assert (fake.split, fake.label, fake.source, fake.identities) == ("train", 1, "per-frame", ("ffpp:003", "ffpp:000"))
    assert by_id["ffpp/FaceSwap/c23/030_040"].split == "test" and fake.pair == "FaceSwap/003_000"
    check_identities(entries)


def test_refined_entries_mirror_the_pairs_and_missing_ones_are_refused(ffpp, tmp_path: Path) -> None:
    root, splits = ffpp
    per_frame = ffpp_entries(root, ["FaceSwap"], "c23", splits)
    results = tmp_path / "results"
    for e in per_frame:
        if e.source == "per-frame" and e.id != "ffpp/FaceSwap/c23/030_040":
            touch(results / "refined_sequences/FaceSwap-NICe/c23/videos" / Path(e.path).name)
    with pytest.raises(InputError, match=r"1 refined video\(s\) \(run the workflow.*030_040.mp4"):
        refined_entries(results, per_frame)
    touch(results / "refined_sequences/FaceSwap-NICe/c23/videos/030_040.mp4")
    refined = refined_entries(results, per_frame)
    assert len(refined) == 5 and {e.source for e in refined} == {"refined"}
    assert {e.pair for e in refined} == {e.pair for e in per_frame if e.pair}
    assert next(e for e in refined if e.pair == "FaceSwap/030_040").split == "test"

    bench = export_deepfakebench(per_frame + refined, tmp_path / "bench.json")
    ff = bench["FaceForensics++"]
    assert set(ff) == {"FF-real", "FF-FS", "FF-FS-NICe"}
    assert ff["FF-FS-NICe"]["test"]["c23"]["030_040"]["label"] == "FF-FS-NICe"
    assert json.loads((tmp_path / "bench.json").read_text()) == bench


def test_an_identity_in_two_splits_is_refused_naming_it(ffpp, tmp_path: Path) -> None:
    root, splits = ffpp
    entries = ffpp_entries(root, ["FaceSwap"], "c23", splits)
    leak = VideoEntry("ffpp/FaceSwap/c23/000_040", "x.mp4", 1, "per-frame", "test", ("ffpp:000", "ffpp:040"), "ffpp")
    with pytest.raises(InputError, match=r"identity ffpp:000 is in both train \(ffpp/original/c23/000\) and test "
                                         r"\(ffpp/FaceSwap/c23/000_040\)"):
        check_identities([*entries, leak])
    with pytest.raises(InputError, match="twice"):
        check_identities([entries[0], entries[0]])
    write_index(tmp_path / "index.json", entries)
    assert read_index(tmp_path / "index.json") == entries
    with pytest.raises(InputError, match="identity ffpp:000"):
        write_index(tmp_path / "bad.json", [*entries, leak])
    assert not (tmp_path / "bad.json").exists()


def test_a_pair_in_two_split_files_is_refused(ffpp, tmp_path: Path) -> None:
    root, splits = ffpp
    splits["val"].write_text(json.dumps([["003", "000"]]))
    with pytest.raises(InputError, match="pair 000/003 is in both train and val"):
        ffpp_entries(root, ["FaceSwap"], "c23", splits)


def celebdf(tmp_path: Path, lines: list[str]) -> Path:
    root = tmp_path / "Celeb-DF-v2"
    for line in lines:
        touch(root / line.split()[1])
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celebdf_list_one_is_real_and_identities_come_from_names(tmp_path: Path) -> None:
    root = celebdf(tmp_path, ["1 YouTube-real/00170.mp4", "1 Celeb-real/id3_0002.mp4",
                              "0 Celeb-synthesis/id3_id16_0002.mp4"])
    entries = celebdf_entries(root)
    assert [(e.label, e.split, e.source) for e in entries] == [(0, "test", "original"), (0, "test", "original"),
                                                               (1, "test", "external")]
    assert entries[0].identities == ("celebdf:youtube-00170",)
    assert entries[2].identities == ("celebdf:id3", "celebdf:id16") and entries[2].method == "Celeb-synthesis"


@pytest.mark.parametrize(("line", "message"), [
    ("0 Celeb-real/id3_0002.mp4", r"labelled 0 \(fake: in this list 1 is real\) but Celeb-real holds real"),
    ("1 Celeb-synthesis/id3_id16_0002.mp4", "labelled 1 .* but Celeb-synthesis holds fake"),
    ("2 Celeb-real/id3_0002.mp4", "expected '<1 real | 0 fake>"),
    ("1 Other/id3_0002.mp4", "unknown folder Other"),
    ("0 Celeb-synthesis/id3_0002.mp4", "unexpected Celeb-DF v2 video name"),
])
def test_celebdf_list_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    root = celebdf(tmp_path, ["1 YouTube-real/00170.mp4", line])
    with pytest.raises(InputError, match=message) as err:
        celebdf_entries(root)
    assert ":2:" in str(err.value) or "video name" in str(err.value)


def test_a_missing_celebdf_video_is_refused(tmp_path: Path) -> None:
    root = celebdf(tmp_path, ["1 YouTube-real/00170.mp4"])
    (root / "List_of_testing_videos.txt").write_text("1 YouTube-real/00170.mp4\n1 YouTube-real/00171.mp4\n")
    with pytest.raises(InputError, match=r"1 Celeb-DF v2 video\(s\) missing: .*00171.mp4"):
        celebdf_entries(root)
