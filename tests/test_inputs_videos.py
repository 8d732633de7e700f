from pathlib import Path

import pytest

from nice_core.errors import InputError
from nice_core.inputs.videos import workflow_videos


def test_plain_and_given_videos(short_clip, tmp_path):
    config = {"videos": {"a": str(short_clip), "b": {"target": str(short_clip), "proxy": str(short_clip),
                                                       "identity": str(short_clip)}}}
    videos = workflow_videos(config)
    assert videos["a"].generated_proxy and videos["a"].identity is None and videos["a"].method == "swap"
    assert not videos["b"].generated_proxy and videos["b"].method == "given"
    assert videos["a"].output_relpath == Path("refined/a.mp4")


def test_relative_paths_and_errors(short_clip, tmp_path):
    (tmp_path / "v.mp4").symlink_to(short_clip)
    assert workflow_videos({"videos": {"v": "v.mp4"}}, base=tmp_path)["v"].target == tmp_path / "v.mp4"
    with pytest.raises(InputError, match="1 input file\\(s\\) missing: .*nope.mp4"):
        workflow_videos({"videos": {"v": "nope.mp4"}}, base=tmp_path)
    with pytest.raises(InputError, match="must use only letters"):
        workflow_videos({"videos": {"a b": str(short_clip)}})
    with pytest.raises(InputError, match="needs 'target'"):
        workflow_videos({"videos": {"v": {"proxy": str(short_clip)}}})
    with pytest.raises(InputError, match="names no videos"):
        workflow_videos({"videos": {}})
    with pytest.raises(InputError, match="lacks target.mp4, proxy.mp4, clean.mp4"):
        workflow_videos({"benchmarks": [str(tmp_path)]})


def test_names_must_be_unique_across_sources(short_clip, tmp_path):
    csv = tmp_path / "pairs.csv"
    csv.write_text(f"name,target,proxy,identity\nv,{short_clip},{short_clip},\n")
    with pytest.raises(InputError, match="'v' is used twice"):
        workflow_videos({"videos": {"v": str(short_clip)}, "pairs_csv": str(csv)})


def test_an_ffpp_pairs_output_is_encoded_like_ffpp_unless_the_user_says_otherwise():
    from nice_core.inputs.videos import VideoSpec, output_encoding

    encode = {"codec": "libx265", "crf": 18, "preset": "slow", "visible_label": False, "match_ffpp": True}
    spec = VideoSpec("FaceSwap__c40__000_003", Path("t.mp4"), Path("p.mp4"), None, None, "FaceSwap",
                     Path("o.mp4"), "c40")
    assert output_encoding(spec, encode) == {**encode, "codec": "libx264", "crf": 40}
    raw = VideoSpec("x", Path("t.mp4"), None, None, None, "m", Path("o.mp4"), "raw")
    assert output_encoding(raw, encode)["crf"] == 0  # lossless, as FF++'s raw videos
    assert output_encoding(spec, {**encode, "match_ffpp": False}) == {**encode, "match_ffpp": False}
    plain = VideoSpec("y", Path("t.mp4"), None, None, None, "m", Path("o.mp4"))
    assert output_encoding(plain, encode) == encode



def test_videos_of_one_target_file_share_its_key_and_no_other_does(tmp_path):
    """The key names the target's shared work folder: one per file path (FF++'s methods of one original share
    it), two files of one name in different folders do not, and it is a valid folder and wildcard name."""
    from nice_core.inputs.ffpp import NAME_PATTERN
    from nice_core.inputs.videos import target_key

    a, b = tmp_path / "c23" / "000.mp4", tmp_path / "c40" / "000.mp4"
    assert target_key(a) == target_key(str(a)) == target_key(tmp_path / "c23" / ".." / "c23" / "000.mp4")
    assert target_key(a) != target_key(b) and target_key(a).startswith("000-")
    odd = target_key(tmp_path / ".my clip (1).mp4")
    assert NAME_PATTERN.fullmatch(odd) and odd.startswith("my_clip__1_-"), odd
