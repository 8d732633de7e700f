"""Every written video or image says it is synthetic: container/image tags and a pixel watermark that
survives re-encoding at CRF 28, half-size rescaling and a 10% border crop (a 2 s clip: all of them at
once); clean footage is not flagged."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from nice_core.io import VideoReader, VideoWriter, probe_video
from nice_core.provenance import synthetic_label
from nice_core.provenance.image import read_image_tags, write_image
from nice_core.provenance.verify import verify_file
from nice_core.provenance.watermark import DETECT_Z, detect_frames, embed

from conftest import psnr, run_ffmpeg

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def marked(short_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("marked") / "marked.mp4"
    with VideoReader(short_clip) as reader, VideoWriter(out, 640, 360, reader.probe.fps, audio_from=short_clip,
                                                         label=synthetic_label({"target": short_clip})) as writer:
        for frame in reader:
            writer.write(frame)
        payload = writer.label.payload
    return out, payload


def nice_core(*args):
    return subprocess.run([sys.executable, "-m", "nice_core", *args], capture_output=True, text=True, timeout=300)


def test_the_watermark_is_invisible(short_clip):
    frames = [f for _, f in VideoReader(short_clip).iter_frames(0, 10)]
    assert min(psnr(f, embed(f, 0x12345)) for f in frames) >= 42.0


@pytest.mark.parametrize("name,filters", [
    ("crf28", ["-c:v", "libx264", "-crf", "28"]),
    ("half", ["-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "23"]),
    ("crop10", ["-vf", "crop=iw*0.8:ih*0.8:iw*0.1:ih*0.1", "-c:v", "libx264", "-crf", "23"]),
])
def test_the_watermark_survives_common_handling(marked, tmp_path, name, filters):
    source, payload = marked
    out = tmp_path / f"{name}.mp4"
    run_ffmpeg("-i", str(source), "-map_metadata", "-1", *filters, str(out))
    result = verify_file(out)
    assert not result.label_found  # the tags were stripped on purpose...
    assert result.watermark.found and result.watermark.payload == payload  # ...the pixels still say it
    done = nice_core("verify", str(out))
    assert done.returncode == 0 and "watermark: DETECTED" in done.stdout


@pytest.mark.parametrize("name,scale", [
    ("half", "scale=320:180"),  # the reported case: 640x360 halved and re-encoded at CRF 28
    ("crop_and_half", "crop=iw*0.8:ih*0.8:iw*0.1:ih*0.1,scale=iw/2:ih/2"),  # 256x144
])
def test_a_two_second_clip_survives_halving_at_crf28(marked, short_clip, tmp_path, name, scale):
    # 48 frames (2 s at 24 fps), the shortest clip the watermark promises to survive this for.
    source, payload = marked
    copies = {}
    for kind, video in (("marked", source), ("unmarked", short_clip)):
        copies[kind] = tmp_path / f"{kind}_{name}.mp4"
        run_ffmpeg("-i", str(video), "-vf", scale, "-c:v", "libx264", "-crf", "28", "-map_metadata", "-1",
                   str(copies[kind]))
    probe = probe_video(copies["marked"])
    assert probe.width <= 320 and probe.n_frames == 48
    result = verify_file(copies["marked"])
    assert not result.label_found
    w = result.watermark
    assert w.found and w.payload == payload and w.scale == 2.0
    assert w.z >= 1.25 * DETECT_Z  # with a margin: another x264 build or a harder clip costs some of it
    clean = verify_file(copies["unmarked"])
    assert not clean.found and clean.watermark.z < 0.7 * DETECT_Z


def test_clean_footage_is_not_flagged(sample, no_face_clip, clips):
    others = clips / "mandelbrot.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "mandelbrot=size=640x360:rate=25", "-t", "2", "-pix_fmt", "yuv420p", str(others))
    for video in (sample, no_face_clip, others):
        result = verify_file(video)
        # Unmarked footage scores the largest of some 10^5 near-Gaussian values (about 4 to 5).
        assert not result.found and result.watermark.z < 0.7 * DETECT_Z
    assert nice_core("verify", str(sample)).returncode == 1


def test_verify_reports_both_and_errors(marked, tmp_path):
    source, payload = marked
    done = nice_core("verify", str(source))
    assert done.returncode == 0
    assert "metadata label: FOUND" in done.stdout and f"payload {payload:05x}" in done.stdout
    missing = nice_core("verify", str(tmp_path / "nope.mp4"))
    assert missing.returncode == 2 and missing.stderr.startswith("nice-core: error:")


def test_a_parity_reencoded_original_carries_the_mark_but_is_never_called_synthetic(short_clip, tmp_path):
    """The detection study's reals: re-encoded like the refined videos and marked with the parity payload, so
    both classes carry the mark; verify finds the mark, reads the payload and says "not synthetic"."""
    from nice_core.provenance.watermark import PARITY_PAYLOAD, payload_from_inputs

    out = tmp_path / "parity.mp4"
    done = nice_core("detect", "reencode", str(short_clip), "-o", str(out), "--compression", "c23", "--as", "real")
    assert done.returncode == 0, done.stderr
    result = verify_file(out)
    assert result.watermark.found and result.watermark.payload == PARITY_PAYLOAD
    assert result.parity and not result.found and not result.label_found
    assert result.tags["synthetic_media"] == "false" and result.tags["nice_core_parity"] == "true"
    assert probe_video(out).n_frames == 48
    stripped = tmp_path / "stripped.mp4"  # the tags gone: the payload alone still says "parity"
    run_ffmpeg("-i", str(out), "-map_metadata", "-1", "-c:v", "libx264", "-crf", "23", str(stripped))
    again = verify_file(stripped)
    assert again.parity and not again.found
    done = nice_core("verify", str(stripped))
    assert done.returncode == 1 and "re-encoded by nice-core for data-set parity" in done.stdout
    assert "not synthetic media" in done.stdout
    # no synthetic output can carry the parity payload: this digest's 20-bit prefix is zero, its payload is 1
    zero_prefix = f"{225231:064x}"
    assert hashlib.sha256(zero_prefix.encode()).digest()[:3] < b"\x00\x00\x10"
    assert payload_from_inputs([zero_prefix]) == 1


def test_a_parity_reencoded_fake_or_probe_copy_is_labelled_synthetic_and_shares_the_encoding(short_clip, tmp_path):
    """A per-frame swap (or the watermark probe's stand-in) goes through the same encoder as a parity real but
    carries a synthetic output's label and payload; the clip cutter sees one encoding path for both."""
    from nice_core.detect.clips import video_path_note
    from nice_core.provenance.watermark import PARITY_PAYLOAD

    real, fake = tmp_path / "real.mp4", tmp_path / "fake.mp4"
    assert nice_core("detect", "reencode", str(short_clip), "-o", str(real), "--as", "real").returncode == 0
    done = nice_core("detect", "reencode", str(short_clip), "-o", str(fake), "--as", "fake")
    assert done.returncode == 0 and "a synthetic output's label and mark" in done.stderr
    result = verify_file(fake)
    assert result.found and result.label_found and not result.parity
    assert result.watermark.payload != PARITY_PAYLOAD and "per-frame swap" in result.tags["synthetic_media_kind"]
    assert video_path_note(real) == video_path_note(fake) == "h264 yuv420p CRF 23, written by nice-core"
    assert video_path_note(short_clip).endswith(", as found")
    bad = nice_core("detect", "reencode", str(short_clip), "-o", str(tmp_path / "x.mp4"), "--as", "maybe")
    assert bad.returncode == 2 and "invalid choice: 'maybe'" in bad.stderr
    unsaid = nice_core("detect", "reencode", str(short_clip), "-o", str(tmp_path / "x.mp4"))
    assert unsaid.returncode == 2 and "--as" in unsaid.stderr  # a swap must never become "real" by default
    again = nice_core("detect", "reencode", str(fake), "-o", str(tmp_path / "x.mp4"), "--as", "real")
    assert again.returncode == 2 and "is a nice-core output already" in again.stderr
    probe = nice_core("detect", "reencode", str(fake), "-o", str(tmp_path / "x.mp4"), "--as", "probe")
    assert probe.returncode == 2 and "not a probe copy" in probe.stderr
    twice = nice_core("detect", "reencode", str(real), "-o", str(tmp_path / "x.mp4"), "--as", "fake")
    assert twice.returncode == 2 and "is a parity copy already" in twice.stderr
    assert not (tmp_path / "x.mp4").exists()
    # a parity tag on a file whose mark carries a synthetic payload: the pixels win
    retagged = tmp_path / "retagged.mp4"
    run_ffmpeg("-i", str(fake), "-c", "copy", "-map_metadata", "-1", "-movflags", "use_metadata_tags",
               "-metadata", "nice_core_parity=true", str(retagged))
    result = verify_file(retagged)
    assert result.tags.get("nice_core_parity") == "true" and not result.parity and result.found


def test_a_fake_nice_core_labelled_keeps_its_own_label_and_mark_through_the_parity_reencode(short_clip, tmp_path):
    """A per-frame proxy nice-core wrote (a bench's stand-in for FF++'s swaps) is re-encoded like the others but
    not marked again: the copy's mark is the source's payload at the source's strength, not two marks."""
    from nice_core.detect.clips import video_path_note

    fake, copy = tmp_path / "fake.mp4", tmp_path / "copy.mp4"
    assert nice_core("detect", "reencode", str(short_clip), "-o", str(fake), "--as", "fake").returncode == 0
    done = nice_core("detect", "reencode", str(fake), "-o", str(copy), "--as", "fake")
    assert done.returncode == 0, done.stderr
    source, result = verify_file(fake), verify_file(copy)
    assert result.found and result.label_found and not result.parity
    assert result.watermark.payload == source.watermark.payload
    assert "not stamped again" in result.tags["synthetic_media_kind"]
    assert result.tags["input_per-frame_sha256"] == hashlib.sha256(fake.read_bytes()).hexdigest()
    assert video_path_note(copy) == "h264 yuv420p CRF 23, written by nice-core"
    # no second stamp: what the re-encode changed holds none of the mark's pattern (a stamp would add it whole)
    frame = VideoReader(fake)[5]
    pattern = (embed(frame, source.watermark.payload).astype(float) - frame).ravel()
    change = (VideoReader(copy)[5].astype(float) - frame).ravel()
    assert abs(change @ pattern / (pattern @ pattern)) < 0.25


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_images_carry_tags_and_watermark(short_clip, tmp_path, suffix):
    frame = VideoReader(short_clip)[10]
    out = write_image(tmp_path / f"still{suffix}", frame, inputs={"target": short_clip})
    tags = read_image_tags(out)
    assert tags["synthetic_media"] == "true" and len(tags["input_target_sha256"]) == 64
    assert verify_file(out).found
    clean = tmp_path / f"clean{suffix}"
    import cv2

    cv2.imwrite(str(clean), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert not verify_file(clean).found


def test_visible_label(short_clip, tmp_path):
    out = tmp_path / "visible.mp4"
    frame = VideoReader(short_clip)[0]
    with VideoWriter(out, 640, 360, probe_video(short_clip).fps,
                     label=synthetic_label(None, visible=True)) as writer:
        writer.write(frame)
    shown = VideoReader(out)[0]
    corner = (slice(330, 360), slice(0, 200))
    assert np.abs(shown[corner].astype(int) - frame[corner]).mean() > 10


def test_detection_needs_the_marks_pattern(short_clip):
    frames = [f for _, f in VideoReader(short_clip).iter_frames(0, 24)]
    assert detect_frames(embed(f, 7) for f in frames).payload == 7
    assert not detect_frames(frames).found


def make_test_signer(folder):
    """A throwaway CA and ES256 signing certificate, made with the openssl CLI."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder, timeout=60)

    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=test CA/O=nice-core tests",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", "ca.pem")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key")
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key", "-out", "leaf.pk8")
    openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=test signer/O=nice-core tests", "-out", "leaf.csr")
    (folder / "ext.cnf").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                    "extendedKeyUsage=emailProtection\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-sha256", "-extfile", "ext.cnf", "-out", "leaf.pem")
    (folder / "chain.pem").write_bytes((folder / "leaf.pem").read_bytes() + (folder / "ca.pem").read_bytes())
    return folder / "leaf.pk8", folder / "chain.pem"


def test_c2pa_manifest_declares_the_ai_edit(short_clip, tmp_path):
    pytest.importorskip("c2pa", reason="c2pa-python is the optional [c2pa] extra")
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI to make a test certificate")
    from nice_core.io import EncodeOptions
    from nice_core.provenance.c2pa_manifest import AI_SOURCE_TYPE, read_manifest

    key, cert = make_test_signer(tmp_path)
    out = tmp_path / "signed.mp4"
    frame = VideoReader(short_clip)[0]
    encode = EncodeOptions(c2pa_key=str(key), c2pa_cert=str(cert))
    with VideoWriter(out, 640, 360, probe_video(short_clip).fps, encode=encode,
                     label=synthetic_label(None, encode=encode)) as writer:
        writer.write(frame)
    manifest = read_manifest(out)
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    assert actions[0]["digitalSourceType"] == AI_SOURCE_TYPE
    assert "C2PA manifest: FOUND" in nice_core("verify", str(out)).stdout
    assert read_manifest(short_clip) is None
    bad = nice_core("swap", "--identity", str(short_clip), "--target", str(short_clip), "-o", str(tmp_path / "x.mp4"),
                    "--c2pa-key", str(tmp_path / "missing.pem"), "--c2pa-cert", str(cert))
    assert bad.returncode == 2 and "cannot read the C2PA key" in bad.stderr
    assert not (tmp_path / "x.mp4").exists()
