import json
import shutil
from pathlib import Path

import pytest

from nice_core.errors import InputError
from nice_core.inputs.ffpp import NAME_PATTERN, VideoPair, csv_pairs, ffpp_pairs

IDS = ("000", "003", "953", "974")
#: (method, target, source) of every manipulated video in the fake tree.
MANIPULATED = [
    ("Deepfakes", "000", "003"), ("Deepfakes", "003", "000"), ("Deepfakes", "953", "974"),
    ("FaceSwap", "000", "003"), ("FaceSwap", "974", "953"),
]


def _place(video: Path, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(video)
    return path


@pytest.fixture
def ffpp(tmp_path, short_clip) -> Path:
    """A tiny FF++ tree at c23 (and an empty c40), every video a symlink to the short clip."""
    root = tmp_path / "ffpp"
    for vid in IDS:
        _place(short_clip, root / f"original_sequences/youtube/c23/videos/{vid}.mp4")
    for method, target, source in MANIPULATED:
        _place(short_clip, root / f"manipulated_sequences/{method}/c23/videos/{target}_{source}.mp4")
    (root / "manipulated_sequences/Deepfakes/c23/videos/readme.txt").write_text("not a video")
    (root / "original_sequences/youtube/c40/videos").mkdir(parents=True)
    return root


def test_ffpp_pairs_every_manipulated_video(ffpp):
    pairs = ffpp_pairs(ffpp, ["FaceSwap", "Deepfakes"])
    assert [p.name for p in pairs] == sorted(f"{m}__c23__{t}_{s}" for m, t, s in MANIPULATED)
    pair = next(p for p in pairs if p.name == "FaceSwap__c23__974_953")
    originals = ffpp / "original_sequences/youtube/c23/videos"
    assert pair == VideoPair(
        name="FaceSwap__c23__974_953", method="FaceSwap", compression="c23",
        target=originals / "974.mp4",
        proxy=ffpp / "manipulated_sequences/FaceSwap/c23/videos/974_953.mp4",
        identity=originals / "953.mp4",
        output_relpath=Path("refined_sequences/FaceSwap-NICe/c23/videos/974_953.mp4"),
    )
    assert all(NAME_PATTERN.fullmatch(p.name) and p.target.is_file() for p in pairs)
    assert ffpp_pairs(ffpp, ["Deepfakes", "FaceSwap"]) == pairs  # deterministic, whatever the order
    assert [p.method for p in ffpp_pairs(ffpp, "FaceSwap")] == ["FaceSwap", "FaceSwap"]


def test_ffpp_split_keeps_pairs_in_either_order(ffpp, tmp_path):
    split = tmp_path / "test.json"
    split.write_text(json.dumps([["953", "974"], ["012", "026"]]))
    pairs = ffpp_pairs(ffpp, ["Deepfakes", "FaceSwap"], split=split)
    assert [p.name for p in pairs] == ["Deepfakes__c23__953_974", "FaceSwap__c23__974_953"]
    split.write_text(json.dumps([["003", "000"]]))
    assert [p.name for p in ffpp_pairs(ffpp, ["Deepfakes"], split=split)] == [
        "Deepfakes__c23__000_003", "Deepfakes__c23__003_000"]


@pytest.mark.parametrize("content, words", [
    ("[[\"953\", \"974\"]", "not valid JSON"),
    ("{\"953\": \"974\"}", r"JSON list of \[id, id\] pairs, not a dict"),
    ("[[\"953\", \"974\", \"000\"]]", "entry 0"),
    ("[[953, 974]]", "id strings"),
    ("[]", "no pairs"),
])
def test_ffpp_bad_split_file(ffpp, tmp_path, content, words):
    split = tmp_path / "split.json"
    split.write_text(content)
    with pytest.raises(InputError, match=words) as err:
        ffpp_pairs(ffpp, ["Deepfakes"], split=split)
    assert str(split) in str(err.value)


def test_ffpp_split_matching_nothing(ffpp, tmp_path):
    split = tmp_path / "val.json"
    split.write_text(json.dumps([["012", "026"]]))
    with pytest.raises(InputError, match=r"none of the 3 Deepfakes c23 videos .* is in split .*val.json"):
        ffpp_pairs(ffpp, ["Deepfakes"], split=split)


def test_ffpp_missing_folders_are_named(ffpp, tmp_path):
    with pytest.raises(InputError, match=f"root not found: {tmp_path / 'nowhere'}"):
        ffpp_pairs(tmp_path / "nowhere", ["Deepfakes"])
    with pytest.raises(InputError, match=r"method folder not found: .*NeuralTextures/c23/videos "
                                         r"\(methods present: Deepfakes, FaceSwap\)"):
        ffpp_pairs(ffpp, ["Deepfakes", "NeuralTextures"])
    with pytest.raises(InputError, match="original videos folder not found: .*youtube/raw/videos"):
        ffpp_pairs(ffpp, ["Deepfakes"], compression="raw")
    with pytest.raises(InputError, match=r"method folder not found: .*Deepfakes/c40/videos"):
        ffpp_pairs(ffpp, ["Deepfakes"], compression="c40")
    with pytest.raises(InputError, match="unknown FaceForensics\\+\\+ compression 'c30'"):
        ffpp_pairs(ffpp, ["Deepfakes"], compression="c30")
    with pytest.raises(InputError, match="split file not found"):
        ffpp_pairs(ffpp, ["Deepfakes"], split=tmp_path / "train.json")
    empty = ffpp / "manipulated_sequences/Face2Face/c23/videos"
    empty.mkdir(parents=True)
    with pytest.raises(InputError, match=f"no .mp4 videos in FaceForensics\\+\\+ method folder {empty}"):
        ffpp_pairs(ffpp, ["Face2Face"])


def test_ffpp_missing_originals_are_refused_at_listing(ffpp):
    originals = ffpp / "original_sequences/youtube/c23/videos"
    (originals / "003.mp4").unlink()
    with pytest.raises(InputError) as err:
        ffpp_pairs(ffpp, ["Deepfakes", "FaceSwap"])
    message = str(err.value)
    assert "\n" not in message
    # 003 is the target or identity of three pairs: reported once, with the count of pairs it blocks.
    assert message.startswith("1 original video(s) missing, needed by 3 of 5 pairs: ")
    assert str(originals / "003.mp4") in message and "identity of Deepfakes 000_003.mp4, ..." in message
    assert ffpp_pairs(ffpp, ["FaceSwap"], split=_write_split(ffpp, [["953", "974"]]))  # the rest still list


def test_ffpp_many_missing_originals_are_summarised(ffpp):
    originals = ffpp / "original_sequences/youtube/c23/videos"
    for vid in IDS:
        (originals / f"{vid}.mp4").unlink()
    with pytest.raises(InputError, match=r"^4 original video\(s\) missing, needed by 5 of 5 pairs: .*000\.mp4 .*"
                                         r"; and 1 more$"):
        ffpp_pairs(ffpp, ["Deepfakes", "FaceSwap"])


def test_ffpp_unexpected_video_name(ffpp, short_clip):
    _place(short_clip, ffpp / "manipulated_sequences/Deepfakes/c23/videos/01_02__meeting_serious.mp4")
    with pytest.raises(InputError, match="unexpected FaceForensics\\+\\+ video name 01_02__meeting_serious.mp4"):
        ffpp_pairs(ffpp, ["Deepfakes"])


def _write_split(root: Path, pairs: list[list[str]]) -> Path:
    split = root / "split.json"
    split.write_text(json.dumps(pairs))
    return split


@pytest.fixture
def flat(tmp_path, short_clip) -> Path:
    """A flat folder of videos (copies, not links) and an absolute-path video elsewhere."""
    folder = tmp_path / "data"
    for name in ("videos/ben.mp4", "videos/anna.mp4", "swaps/anna_ben.mp4", "swaps/ben_anna.mp4"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(short_clip, folder / name)
    shutil.copy(short_clip, tmp_path / "elsewhere.mp4")
    return folder


def _csv(folder: Path, text: str) -> Path:
    path = folder / "pairs.csv"
    path.write_text(text)
    return path


def test_csv_pairs_relative_and_absolute_paths(flat, tmp_path):
    path = _csv(flat, "target,proxy,identity,name,method\n"
                      "videos/ben.mp4,swaps/anna_ben.mp4,videos/anna.mp4,anna_to_ben,SimSwap\n"
                      f"\n{tmp_path / 'elsewhere.mp4'}, swaps/ben_anna.mp4 ,,,\n")
    first, second = csv_pairs(path)
    assert first == VideoPair("anna_to_ben", "SimSwap", None, flat / "videos/ben.mp4",
                              flat / "swaps/anna_ben.mp4", flat / "videos/anna.mp4", Path("refined/anna_to_ben.mp4"))
    assert (second.name, second.method, second.identity) == ("ben_anna", "external", None)
    assert second.target == tmp_path / "elsewhere.mp4" and second.proxy == flat / "swaps/ben_anna.mp4"
    assert second.output_relpath == Path("refined/ben_anna.mp4")


def test_csv_pairs_any_column_order_and_excel_bom(flat):
    path = flat / "pairs.csv"
    path.write_bytes("\ufeffIdentity,Proxy,Target\r\nvideos/anna.mp4,swaps/anna_ben.mp4,videos/ben.mp4\r\n"
                     .encode())
    (pair,) = csv_pairs(path)
    assert (pair.name, pair.target, pair.identity) == ("anna_ben", flat / "videos/ben.mp4", flat / "videos/anna.mp4")


@pytest.mark.parametrize("text, words", [
    ("", "pairs CSV is empty"),
    ("target,proxy,identity\n", "header but no rows"),
    ("target,proxy\nvideos/ben.mp4,swaps/anna_ben.mp4\n", "line 1: missing column(s) identity"),
    ("target,proxy,identity,notes\n", "line 1: unknown column(s) 'notes'"),
    ("target,proxy,identity,proxy\n", "line 1: a column is named twice"),
    ("target,proxy,identity\nvideos/ben.mp4,swaps/anna_ben.mp4\n", "line 2: 2 cells, the header has 3"),
    ("target,proxy,identity\n,swaps/anna_ben.mp4,\n", "line 2: empty target"),
    ("target,proxy,identity\nvideos/ben.mp4,swaps/anna_ben.mp4,\nvideos/bob.mp4,swaps/ben_anna.mp4,\n",
     "line 3: target video not found: .*videos/bob.mp4"),
    ("target,proxy,identity\nvideos/ben.mp4,swaps/gone.mp4,\n", "line 2: proxy video not found"),
    ("target,proxy,identity\nvideos/ben.mp4,swaps/anna_ben.mp4,videos/carl.mp4\n",
     "line 2: identity video not found: .*carl.mp4"),
    ("name,target,proxy,identity\na,videos/ben.mp4,swaps/anna_ben.mp4,\n\na,videos/anna.mp4,swaps/ben_anna.mp4,\n",
     "line 4: name 'a' is already used on line 2"),
    ("target,proxy,identity\nvideos/ben.mp4,swaps/anna_ben.mp4,\nvideos/anna.mp4,swaps/anna_ben.mp4,\n",
     "line 3: name 'anna_ben' is already used on line 2"),
    ("name,target,proxy,identity\nanna to ben,videos/ben.mp4,swaps/anna_ben.mp4,\n",
     "line 2: name 'anna to ben' is not usable as a folder name"),
])
def test_csv_pairs_errors_name_the_line(flat, text, words):
    path = _csv(flat, text)
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        csv_pairs(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_csv_pairs_missing_file(tmp_path):
    with pytest.raises(InputError, match="pairs CSV not found"):
        csv_pairs(tmp_path / "pairs.csv")
