"""Provenance records (nice_core/provenance/record.py, `nice-core provenance`): hashes, config, seeds, versions."""

import json
import struct
import subprocess
import sys

import pytest

from nice_core.io.digest import file_sha256
from nice_core.provenance.record import build_record, find_seeds, run_config


def test_a_record_hashes_its_files_and_finds_every_seed(tmp_path):
    target = tmp_path / "target.mp4"
    target.write_bytes(b"not really a video")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"name": "a", "bench": {"seed": 3}}))
    header = json.dumps({"__metadata__": {"state": json.dumps({"config": {"seed": 7, "epochs": 2}})}}).encode()
    carrier = tmp_path / "carrier.safetensors"
    carrier.write_bytes(struct.pack("<Q", len(header)) + header)
    config = run_config({"videos": {"a": "x.mp4"}, "resources": {"track": {"threads": 2}},
                         "face": {"crop_size": 64}, "carrier": {"fit": {"seed": 5}}})
    assert config == {"face": {"crop_size": 64}, "carrier": {"fit": {"seed": 5}}}

    record = build_record("a", {"target": target}, {"metrics": metrics, "carrier": carrier}, config=config,
                          seeds={"extra": 1})
    assert record["inputs"]["target"] == {"path": str(target), "bytes": 18, "sha256": file_sha256(target)}
    assert record["results"]["carrier"]["sha256"] == file_sha256(carrier)
    assert record["seeds"] == {"config.carrier.fit.seed": 5, "metrics.bench.seed": 3,
                               "carrier.state.config.seed": 7, "extra": 1}
    assert record["config"] == config
    assert record["versions"]["nice-core"] and "numpy" in record["versions"]["packages"]
    assert record["versions"]["ffmpeg"].startswith("ffmpeg version")
    assert find_seeds({"a": [{"rng_seed": 2}], "seeds": 9, "seed": True}, "c") == {"c.a[0].rng_seed": 2}


def test_the_command_writes_the_record_and_refuses_a_missing_file(tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"abc")
    out = tmp_path / "rec" / "provenance.json"
    run = [sys.executable, "-m", "nice_core", "provenance", "--name", "a", "-o", str(out)]
    done = subprocess.run([*run, "--input", f"target={target}", "--config-json", '{"face": {"seed": 4}}',
                           "--seed", "swap=11"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert record["seeds"] == {"config.face.seed": 4, "swap": 11}
    assert record["inputs"]["target"]["sha256"] == file_sha256(target)
    missing = subprocess.run([*run, "--result", f"metrics={tmp_path / 'nope.json'}"], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode != 0
    assert "nice-core: error: provenance: no such file" in missing.stderr


@pytest.mark.parametrize("bad", ["target", "=x", "target="])
def test_a_malformed_role_is_refused(tmp_path, bad):
    done = subprocess.run([sys.executable, "-m", "nice_core", "provenance", "--name", "a", "-o",
                           str(tmp_path / "p.json"), "--input", bad], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "must be ROLE=VALUE" in done.stderr
