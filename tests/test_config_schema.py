"""The config schema: one place for every setting's type and default, checked once, in one line (issue 13,
section 1; issue 12, item 8)."""

import dataclasses
import shlex
import subprocess
import sys

import pytest
import yaml

from nice_core import config as cfg
from nice_core.cli import build_parser, dataclass_from_args, main

from conftest import ROOT, SAMPLE


def _leaves(node: dict, path: str = ""):
    node = cfg._resolve(node)
    for key, child in node.get("properties", {}).items():
        child = cfg._resolve(child)
        here = f"{path}.{key}" if path else key
        if "properties" in child and path != "carrier":
            yield from _leaves(child, here)
        yield here, child


def test_every_setting_is_described_and_every_record_refuses_unknown_keys():
    for path, node in _leaves(cfg.schema()):
        if path.startswith("carrier.fit."):
            continue  # documented in FitConfig's docstring, where the defaults live
        assert node.get("description"), f"{path} has no description"
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"


def test_the_repository_config_is_valid_and_defaults_fill_in():
    config = cfg.validate(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert config["face"]["crop_size"] == 256 and config["resources"]["carrier"]["mem_mb"] == 4000
    assert cfg.validate(config) == config  # filling is idempotent
    partial = cfg.validate({"resources": {"carrier": {"threads": 8}}})
    assert partial["resources"]["carrier"] == {**cfg.default("resources.carrier"), "threads": 8}


@pytest.mark.parametrize(("config", "message"), [
    ({"reslts": "x"}, "reslts: unknown key; did you mean results?"),
    ({"face": {"crop_sise": 64}}, "face.crop_sise: unknown key; did you mean crop_size?"),
    ({"face": {"crop_size": 128.5}}, "face.crop_size: 128.5 is not of type 'integer'"),
    ({"encode": {"crf": "high"}}, "encode.crf: 'high' is not of type 'integer', 'null'"),
    ({"proxy": {"generater": "swap"}}, "proxy.generater: unknown key; did you mean generator?"),
    ({"proxy": {"generator": "fsgan"}}, "proxy.generator: 'fsgan' is not one of ['swap', 'external']"),
    ({"ffpp": {"compresion": "c23"}}, "ffpp.compresion: unknown key; did you mean compression?"),
    ({"resources": {"track": {"mem": 10}}}, "resources.track.mem: unknown key; did you mean mem_mb?"),
    ({"carrier": {"fit": {"stpes": 10}}}, "carrier.fit.stpes: unknown key; did you mean steps?"),
    ({"videos": {"a": {"targt": "a.mp4"}}}, "videos.a.targt: unknown key; did you mean target?"),
    ({"face": {"min_detection_confidence": 1.5}}, "face.min_detection_confidence: 1.5 is greater than"),
    ({"prior3d": {"backend": "deca"}}, "prior3d: 'deca_model' is a required property"),
])
def test_a_bad_setting_gets_one_line_naming_its_path(config, message):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(config, "my.yaml")
    assert str(err.value).startswith(f"my.yaml: {message}") and "\n" not in str(err.value)


def test_the_dataclasses_take_their_defaults_from_the_schema():
    from nice_core.composite.render import CompositeConfig
    from nice_core.face import TrackConfig
    from nice_core.io import EncodeOptions
    from nice_core.proxy.check import MAX_OFFSET
    from nice_core.proxy.swap import SwapConfig

    for cls, section in [(TrackConfig, "face"), (SwapConfig, "swap"), (EncodeOptions, "encode"),
                         (CompositeConfig, "composite")]:
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        for key in cfg.schema()["properties"][section]["properties"]:
            if key in fields:
                assert fields[key] == cfg.default(f"{section}.{key}"), (section, key)
    assert MAX_OFFSET == cfg.default("proxy.max_offset")


def _changed(section: str) -> dict:
    """A section with every setting moved off its default (what a user's config might say)."""
    changes = {"face": {"crop_size": 128, "crop_scale": 1.2, "subject": "index:1", "max_faces": 2,
                        "min_detection_confidence": 0.3, "min_tracking_confidence": 0.6, "max_gap_s": 0.25,
                        "smooth_sigma_s": 0.0, "mask_feather": 0.1, "detect_hands": False, "preview": False},
               "swap": {"blend": "seamless", "feather": 0.2, "color_transfer": False, "identity_frames": 3},
               "encode": {"codec": "libx265", "crf": 30, "preset": "fast", "visible_label": True},
               "prior3d": {"backend": "deca", "deca_model": "/models/deca model.tar", "uv_size": 64,
                           "flame_model": "/models/generic_model.pkl", "aggregate_frames": 16},
               "composite": {"paste": "replace", "swap_region": False}}
    return cfg.validate({section: changes[section]})


@pytest.mark.parametrize(("command", "section", "cls_path"), [
    (["track", "v.mp4", "-o", "out"], "face", "nice_core.face:TrackConfig"),
    (["swap", "--identity", "i.mp4", "--target", "t.mp4", "-o", "p.mp4"], "swap", "nice_core.proxy.swap:SwapConfig"),
    (["track", "v.mp4", "-o", "out"], "encode", "nice_core.io:EncodeOptions"),
    (["prior3d", "--store", "s.h5", "-o", "p.h5"], "prior3d", "nice_core.prior3d.stage:Prior3DConfig"),
])
def test_stage_flags_reach_the_command_unchanged(command, section, cls_path):
    """The workflow's path from YAML to a job: the flags parse back into the same settings."""
    import importlib

    module, name = cls_path.split(":")
    cls = getattr(importlib.import_module(module), name)
    config = _changed(section)
    args = build_parser().parse_args([*command, *shlex.split(cfg.stage_flags(config, section))])
    expected = cls(**{k: v for k, v in config[section].items() if k in {f.name for f in dataclasses.fields(cls)}})
    assert dataclass_from_args(cls, args) == expected


def test_composite_proxy_and_carrier_flags_parse():
    from nice_core.cli import _composite_config, _fit_config

    config = cfg.validate({**_changed("composite"), "proxy": {"max_offset": 4, "correct_offset": False},
                           "carrier": {"device": "cpu", "fit": {"steps": 10, "unet_depth": 3,
                                                                "loss_uncertainty": False}}})
    args = build_parser().parse_args(["composite", "--target", "t.mp4", "--store", "s.h5", "--carrier", "c",
                                      "-o", "o.mp4", *shlex.split(cfg.stage_flags(config, "composite"))])
    assert (_composite_config(args).paste, _composite_config(args).swap_region) == ("replace", False)
    args = build_parser().parse_args(["check-proxy", "--target", "t", "--proxy", "p", "-o", "c.json",
                                      *shlex.split(cfg.stage_flags(config, "proxy"))])
    assert (args.max_offset, args.correct_offset) == (4, False)
    args = build_parser().parse_args(["fit", "--store", "s", "--proxy", "p", "-o", "c",
                                      *shlex.split(cfg.stage_flags(config, "carrier"))])
    fit = _fit_config(args)
    assert (fit.device, fit.steps, fit.unet.depth, fit.loss.uncertainty) == ("cpu", 10, 3, False)


def test_a_cli_config_file_is_validated_the_same_way(tmp_path, capsys):
    bad = tmp_path / "my.yaml"
    bad.write_text("face:\n  crop_sise: 64\n")
    assert main(["track", "v.mp4", "-o", str(tmp_path / "out"), "--config", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (f"nice-core: error: {bad}: face.crop_sise: unknown key; "
                                               "did you mean crop_size?")


def test_nice_core_config_prints_the_effective_settings(tmp_path, capsys):
    mine = tmp_path / "mine.yaml"
    mine.write_text("face: {crop_size: 128}\nresources: {carrier: {threads: 4}}\n")
    assert main(["config", str(ROOT / "config.yaml"), str(mine)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["face"]["crop_size"] == 128 and printed["face"]["subject"] == "largest"
    assert printed["resources"]["carrier"]["threads"] == 4 and printed["resources"]["carrier"]["mem_mb"] == 4000
    assert "sample" in printed["videos"]
    assert cfg.validate(printed) == printed


def test_reading_the_config_imports_nothing_heavy():
    code = ("import sys; from nice_core.config import validate, stage_flags; "
            "from nice_core.carrier.config import check_fit_overrides; "
            "from nice_core.inputs.videos import workflow_videos; "
            "c = validate({}); check_fit_overrides(c['carrier']['fit']); stage_flags(c, 'face'); "
            "print(sorted(m for m in ('torch', 'av', 'h5py', 'cv2', 'mediapipe', 'decord') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_dry_run_of_the_default_workflow_imports_no_heavy_library(tmp_path):
    """Building the DAG (on a cluster's login node, at every rerun) must not load torch, PyAV or h5py."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"videos": {"sample": str(SAMPLE)}}))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "-q", "--cores", "1",
                           "--snakefile", str(ROOT / "workflow" / "Snakefile")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "snakemake" in imported and "nice_core.config" in imported
    assert not imported & {"torch", "av", "h5py", "cv2", "mediapipe", "decord"}


def test_the_command_line_starts_without_torch():
    """Every job starts `nice-core`: building its parser (every stage's options) must not import torch (4 s
    of a job's start on a 2-core machine), only the stages that run it do."""
    code = ("import sys; from nice_core.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'mediapipe', 'cv2') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
