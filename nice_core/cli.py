"""``nice-core``: run one pipeline stage on one video.

Every subcommand calls the same library functions the Snakemake rules call. Expected failures
(:class:`~nice_core.errors.NiceError`) print one line, ``nice-core: error: ...``, and exit non-zero;
outputs of a failed command are removed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nice_core import __version__
from nice_core.errors import NiceError, is_disk_full


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--option`` per dataclass field (``crop_size`` -> ``--crop-size``; booleans get ``--no-x``)."""
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        help_text = f"(default: {default})"
        if isinstance(default, bool):
            parser.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            kind = str if default is None else type(default)  # an optional path
            parser.add_argument(flag, dest=field.name, type=kind, default=None, help=help_text)


def dataclass_from_args(cls: type, args: argparse.Namespace, base: dict | None = None):
    """Build ``cls`` from ``base`` values (e.g. a config section) overridden by the given options."""
    values = dict(base or {})
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise NiceError(f"unknown {cls.__name__} setting(s): {', '.join(sorted(unknown))}")
    for field in dataclasses.fields(cls):
        if getattr(args, field.name, None) is not None:
            values[field.name] = getattr(args, field.name)
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise NiceError(f"invalid {cls.__name__}: {err}") from None


def _load_section(path: str | None, section: str) -> dict:
    """A validated section of a ``--config`` file, defaults filled in (``{}`` without a file)."""
    from nice_core.config import load

    return dict(load(path)[section]) if path else {}


def _read_json(path: str, what: str) -> dict:
    """A JSON object written by an earlier stage; missing or malformed is one line of bad input."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NiceError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as err:
        raise NiceError(f"cannot read {what} {path}: {err}") from None
    if not isinstance(data, dict):
        raise NiceError(f"{path} is not a {what} (not a JSON object)")
    return data


def _read_proxy_check(path: str):
    from nice_core.proxy.check import ProxyCheck

    data = _read_json(path, "proxy check JSON")
    try:
        return ProxyCheck.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise NiceError(f"{path} is not a `nice-core check-proxy` JSON ({err})") from None

class _Cleanup:
    """Remove the files a command created if it fails (outputs that existed before are left alone)."""

    def __init__(self) -> None:
        self._paths: list[Path] = []

    def track(self, path: Path) -> Path:
        if not path.exists():
            self._paths.append(path)
        return path

    def run(self) -> None:
        for path in reversed(self._paths):
            if path.is_dir():
                try:
                    path.rmdir()
                except OSError:
                    pass
            else:
                path.unlink(missing_ok=True)


def cmd_probe(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.io import extract_audio, probe_video, write_json

    probe = probe_video(args.video)
    if args.output:
        write_json(cleanup.track(Path(args.output)), probe.to_dict())
    else:
        print(probe.to_json())
    if args.audio:
        if extract_audio(args.video, cleanup.track(Path(args.audio))) is None:
            print(f"no audio stream in {args.video}", file=sys.stderr)
    return 0


def cmd_track(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.chain import WorkFiles
    from nice_core.face import TrackConfig, track_video
    from nice_core.io import EncodeOptions, VideoProbe, extract_audio, probe_video, write_json

    config = dataclass_from_args(TrackConfig, args, _load_section(args.config, "face"))
    encode = dataclass_from_args(EncodeOptions, args, _load_section(args.config, "encode"))
    out_dir = cleanup.track(Path(args.output))
    files = WorkFiles(out_dir)
    if args.probe:
        probe = VideoProbe.from_dict(_read_json(args.probe, "probe JSON"))
    else:
        probe = probe_video(args.video)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(cleanup.track(files.probe), probe.to_dict())
        extract_audio(args.video, cleanup.track(files.audio))
    cleanup.track(files.store)
    cleanup.track(files.preview)
    result = track_video(args.video, out_dir, config, probe=probe, encode=encode,
                         show_progress=not args.quiet)
    print(result.summary())
    return 0


def cmd_swap(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.io import EncodeOptions
    from nice_core.proxy.swap import SwapConfig, swap_video

    config = dataclass_from_args(SwapConfig, args, _load_section(args.config, "swap"))
    encode = dataclass_from_args(EncodeOptions, args, _load_section(args.config, "encode"))
    output = cleanup.track(Path(args.output))
    result = swap_video(args.identity, args.target, output, config, store=args.store, encode=encode,
                        show_progress=not args.quiet)
    print(f"{result.frames_swapped}/{result.n_frames} frames swapped -> {result.output}")
    return 0


def cmd_external_swap(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.proxy.external import ExternalSwapper

    try:
        swapper = ExternalSwapper(preset=args.preset, template=args.template, tool_root=args.tool_root or "",
                                  requires=args.requires or [], device=args.device)
    except ValueError as err:
        raise NiceError(str(err)) from None
    if args.check_only:
        swapper.check_available()
        print("external swapper is available")
        return 0
    if not (args.target and args.identity and args.output):
        raise NiceError("--target, --identity and -o are required unless --check-only")
    output = cleanup.track(Path(args.output))
    log = Path(args.log) if args.log else output.with_suffix(".swap.log")
    swapper.run(args.target, args.identity, output, log)
    print(f"external swap -> {output} (log: {log})")
    return 0


def cmd_check_proxy(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.io import write_json
    from nice_core.proxy.check import check_proxy

    check = check_proxy(args.target, args.proxy, max_offset=args.max_offset,
                        correct_offset=args.correct_offset)
    for note in check.notes:
        print(note, file=sys.stderr)
    if args.output:
        write_json(cleanup.track(Path(args.output)), check.to_dict())
    print(f"proxy matches target: offset {check.frame_offset} frames"
          f"{', rescaled' if check.rescale else ''}")
    return 0


def cmd_bench_make(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.groundtruth.clip import BenchConfig, make_benchmark
    from nice_core.io import EncodeOptions

    config = dataclass_from_args(BenchConfig, args)
    encode = dataclass_from_args(EncodeOptions, args, {"crf": 16})
    meta = make_benchmark(args.source, args.outdir, config, encode=encode, show_progress=not args.quiet)
    print(f"benchmark of {meta['frames']} frames ({meta['frames_with_face']} with a face, "
          f"{len(meta['outlier_frames'])} outliers) -> {args.outdir}")
    return 0


def cmd_eval(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.io import write_json
    from nice_core.metrics import evaluate, format_table

    def offset_of(check: str | None) -> int:
        if not check:
            return 0
        try:
            return int(_read_json(check, "proxy check JSON")["frame_offset"])
        except (KeyError, TypeError, ValueError):
            raise NiceError(f"{check} has no frame_offset (not a `nice-core check-proxy` JSON)") from None

    result = evaluate(args.target, args.video, proxy=args.proxy, identity=args.identity, reference=args.reference,
                      name=args.name, method=args.method, show_progress=not args.quiet,
                      video_offset=offset_of(args.video_check), proxy_offset=offset_of(args.proxy_check),
                      uncertainty=args.uncertainty, subject=args.subject, store=args.store,
                      prior3d=args.prior3d, motion=args.motion)
    print(format_table(result))
    if args.json:
        write_json(cleanup.track(Path(args.json)), result)
    return 0


def cmd_motion(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.metrics.motion import write_motion

    n = write_motion(args.target, cleanup.track(Path(args.output)), show_progress=not args.quiet)
    print(f"motion of {n} frames -> {args.output}")
    return 0


def cmd_report(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.report import load_eval_json, write_video_report
    from nice_core.report.run import build_report

    out = cleanup.track(Path(args.output))
    if len(args.metrics) == 1 and not args.expect:
        write_video_report(load_eval_json(args.metrics[0]), out)
    else:
        build_report(args.metrics, out, videos_dir=args.videos_dir, expected=args.expect or (), log_dir=args.logs)
    print(out)
    return 0


def cmd_config(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    import yaml

    from nice_core.carrier.config import check_fit_overrides
    from nice_core.config import merge, read, validate

    files = args.files or (["config.yaml"] if Path("config.yaml").is_file() else [])
    merged: dict = {}
    for path in files:
        merged = merge(merged, read(path))
    where = " + ".join(files) or "the defaults"
    config = validate(merged, where=where)
    check_fit_overrides(config["carrier"]["fit"], f"{where}: carrier.fit")
    print(f"# nice-core {__version__}: the effective configuration of {where}")
    print(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), end="")
    return 0


def cmd_verify(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.provenance.verify import verify_file

    result = verify_file(args.file)
    print("\n".join(result.summary()))
    return 0 if result.found else 1


def _add_fit_options(parser: argparse.ArgumentParser, warm_start: bool = True) -> None:
    group = parser.add_argument_group("carrier fit (defaults: FitConfig)")
    group.add_argument("--epochs", type=int, help="passes over the frames (default: from the step budget)")
    group.add_argument("--size", type=int, help="crop side the carrier is fitted at (default: the store's, 256)")
    group.add_argument("--lr", type=float, help="peak learning rate")
    group.add_argument("--seed", type=int, help="seed of the weights and the data order (default: 0)")
    group.add_argument("--device", help="cpu, cuda, cuda:N or auto (CUDA falls back to the CPU with a warning)")
    group.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    group.add_argument("--vgg19-weights", help="a torchvision-format VGG-19 state dict for the paper's perceptual "
                       "layers (default: the mediapipe face features that ship with mediapipe)")
    group.add_argument("--no-uncertainty", action="store_true", help="plain loss without the uncertainty term "
                       "(the ablation)")
    group.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="any other FitConfig field (unet_* / loss_* for the nested ones), e.g. steps=1200")
    if warm_start:
        group.add_argument("--init", metavar="CARRIER", help="warm start: begin from this fitted carrier's weights "
                           "(e.g. another method's of the same target; usually with a smaller --set steps=N)")


def _fit_config(args: argparse.Namespace, base: dict | None = None):
    """FitConfig from config-file overrides, then --set, then the named options."""
    import yaml

    from nice_core.carrier.config import FitConfig, with_overrides

    changes = dict(base or {})
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NiceError(f"--set wants KEY=VALUE, got {item!r}")
        changes[key.strip().replace("-", "_")] = yaml.safe_load(value)
    for name in ("epochs", "size", "lr", "seed", "device", "threads"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if args.vgg19_weights:
        changes["loss_vgg19"] = args.vgg19_weights
    if args.no_uncertainty:
        changes["loss_uncertainty"] = False
    try:
        return with_overrides(FitConfig(), **changes)
    except (TypeError, ValueError) as err:
        raise NiceError(f"invalid carrier setting: {err}") from None


def _add_composite_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("re-compositing")
    group.add_argument("--paste", help="residual (default: the carrier's change is added) or replace")
    group.add_argument("--save-uncertainty", metavar="VIDEO", help="also write the carrier's sigma maps here")
    group.add_argument("--swap-region", action=argparse.BooleanOptionalAction, default=None,
                       help="paste through the face mask grown by where the proxy consistently differs from the "
                            "target (default: on; --no-swap-region: the target's face mask only)")


def _composite_config(args: argparse.Namespace):
    from nice_core.composite.render import CompositeConfig

    try:
        values = {"paste": args.paste, "swap_region": args.swap_region}
        return CompositeConfig(**{k: v for k, v in values.items() if v is not None})
    except ValueError as err:
        raise NiceError(str(err)) from None


def cmd_fit(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    import shutil

    from nice_core.carrier import fit_carrier
    from nice_core.chain import WorkFiles
    from nice_core.io.atomic import temporary_sibling

    config = _fit_config(args, _load_section(args.config, "carrier").get("fit"))
    check = _read_proxy_check(args.check) if args.check else None
    output = cleanup.track(Path(args.output))
    checkpoints = Path(args.checkpoint_dir) if args.checkpoint_dir else WorkFiles(output.parent).checkpoints
    crops = Path(args.proxy_crops) if args.proxy_crops else WorkFiles(output.parent).proxy_crops
    result = fit_carrier(args.store, args.proxy, config, checkpoints, check=check, prior3d=args.prior3d,
                         proxy_crops=crops, init=args.init, restart=args.restart)
    tmp = temporary_sibling(output)
    shutil.copyfile(result.weights, tmp)
    tmp.replace(output)
    print(f"carrier fitted: {result.summary()} -> {output}")
    return 0


def cmd_composite(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.carrier import load_carrier, read_checkpoint
    from nice_core.carrier.fit import resolve_device
    from nice_core.chain import WorkFiles
    from nice_core.composite.render import composite_video
    from nice_core.io import EncodeOptions

    encode = dataclass_from_args(EncodeOptions, args, _load_section(args.config, "encode"))
    device = resolve_device(args.device or "cpu")
    checkpoint = read_checkpoint(args.carrier)
    model = load_carrier(checkpoint, device)
    size = checkpoint.state.get("identity", {}).get("size")
    output = cleanup.track(Path(args.output))
    output.parent.mkdir(parents=True, exist_ok=True)
    sigma = cleanup.track(Path(args.save_uncertainty)) if args.save_uncertainty else None
    labels = {k: v for k, v in (("proxy", args.proxy), ("identity", args.identity)) if v}
    crops = Path(args.proxy_crops) if args.proxy_crops else WorkFiles(Path(args.carrier).parent).proxy_crops
    result = composite_video(args.target, args.store, model, output, size=size, config=_composite_config(args),
                             encode=encode, uncertainty_output=sigma, label_inputs=labels,
                             show_progress=not args.quiet, proxy_crops=crops)
    print(result.summary())
    return 0


def cmd_refine(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.face import TrackConfig
    from nice_core.io import EncodeOptions
    from nice_core.prior3d.stage import Prior3DConfig
    from nice_core.refine import refine_video

    fit = _fit_config(args, _load_section(args.config, "carrier").get("fit"))
    track = dataclass_from_args(TrackConfig, argparse.Namespace(), {**_load_section(args.config, "face"),
                                                                   "preview": False})
    encode = dataclass_from_args(EncodeOptions, args, _load_section(args.config, "encode"))
    prior3d = dataclass_from_args(Prior3DConfig, argparse.Namespace(), _load_section(args.config, "prior3d"))
    output = cleanup.track(Path(args.output))
    sigma = cleanup.track(Path(args.save_uncertainty)) if args.save_uncertainty else None
    result = refine_video(args.target, args.proxy, output, identity=args.identity, fit=fit, track=track,
                          prior3d=prior3d, composite=_composite_config(args), encode=encode, work_dir=args.work_dir,
                          keep_work=args.keep_work, uncertainty_output=sigma, show_progress=not args.quiet,
                          init=args.init)
    if args.json:
        from nice_core.io import write_json

        write_json(cleanup.track(Path(args.json)), result.to_dict())
    print(result.summary())
    return 0


def cmd_demo(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.demo import default_sample, run_demo

    fit = _fit_config(args)
    out = cleanup.track(Path(args.output))
    cleanup.track(out / "work")  # removed on failure only while empty: a killed run's files stay for its resume
    page = run_demo(args.video or default_sample(), out, proxy=args.proxy, quick=args.quick, fit=fit,
                    show_progress=not args.quiet)
    print(f"nice-core: demo done. Report: {page.resolve()}")
    return 0


def _add_encode_options(parser: argparse.ArgumentParser) -> None:
    from nice_core.io import EncodeOptions

    group = parser.add_argument_group("video encoding")
    for field in dataclasses.fields(EncodeOptions):
        if field.name in ("codec", "crf", "preset"):
            group.add_argument("--" + field.name, dest=field.name, type=type(field.default) if field.default
                               is not None else str, default=None, help=f"(default: {field.default})")
    group.add_argument("--visible-label", dest="visible_label", action=argparse.BooleanOptionalAction, default=None,
                       help="also draw a visible SYNTHETIC label on every frame (for publishing)")
    group.add_argument("--c2pa-key", dest="c2pa_key", default=None, help="sign a C2PA manifest with this key (PEM)")
    group.add_argument("--c2pa-cert", dest="c2pa_cert", default=None, help="... and this certificate chain (PEM)")


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one error line: ``nice-core: error: fit: argument --epochs: ...`` (the workflow's
    report finds a failed job's cause by that prefix)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix("nice-core").strip()
        self.exit(2, f"nice-core: error: {command + ': ' if command else ''}{message}\n")


def _add_probe_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core probe``."""
    probe = sub.add_parser("probe", help="probe and validate a video; extract its audio (frame extraction stage)")
    probe.add_argument("video")
    probe.add_argument("-o", "--output", help="write the probe as JSON here (default: print it)")
    probe.add_argument("--audio", help="stream-copy the audio track into this file (.mka)")
    probe.set_defaults(func=cmd_probe)


def _add_track_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core track``."""
    from nice_core.face import TrackConfig

    track = sub.add_parser("track", help="probe, track one face, align and crop it into DIR/face.h5")
    track.add_argument("video")
    track.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    track.add_argument("--probe", help="reuse this probe JSON (from `nice-core probe`) instead of probing again")
    track.add_argument("--config", help="read defaults from the face: and encode: sections of this YAML file")
    track.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    group = track.add_argument_group("tracking and alignment")
    add_dataclass_options(group, TrackConfig)
    _add_encode_options(track)
    track.set_defaults(func=cmd_track)


def _add_swap_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core swap``."""
    from nice_core.proxy.swap import SwapConfig

    swap = sub.add_parser("swap", help="built-in FaceSwap-style per-frame swapper: write a proxy video")
    swap.add_argument("--identity", required=True, help="identity image or video (a still of who is pasted in)")
    swap.add_argument("--target", required=True, help="target video")
    swap.add_argument("-o", "--output", required=True, help="proxy video to write")
    swap.add_argument("--store", help="the target's face.h5 from `nice-core track` (skips detection)")
    swap.add_argument("--config", help="read defaults from the swap: and encode: sections of this YAML file")
    swap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_dataclass_options(swap.add_argument_group("swapper"), SwapConfig)
    _add_encode_options(swap)
    swap.set_defaults(func=cmd_swap)


def _add_external_swap_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core external-swap``."""
    from nice_core.proxy.external import PRESETS

    ext = sub.add_parser("external-swap", help="run an external swapper (FSGAN, ...) through a command template")
    how = ext.add_mutually_exclusive_group(required=True)
    how.add_argument("--preset", help=f"a known tool: {', '.join(sorted(PRESETS))}")
    how.add_argument("--template", help="a command with {target} {identity} {output} {device} placeholders")
    ext.add_argument("--requires", nargs="*", help="programs or files a --template needs")
    ext.add_argument("--tool-root", help="where the tool is installed (fills {tool_root})")
    ext.add_argument("--device", default="cpu", help="cpu or cuda:N (default: cpu)")
    ext.add_argument("--target")
    ext.add_argument("--identity")
    ext.add_argument("-o", "--output")
    ext.add_argument("--log", help="the tool's log (default: OUTPUT with .swap.log)")
    ext.add_argument("--check-only", action="store_true", help="only check that the tool is installed")
    ext.set_defaults(func=cmd_external_swap)


def _add_check_proxy_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core check-proxy``."""
    from nice_core.config import default

    check = sub.add_parser("check-proxy", help="check a proxy video against its target (count, fps, size, offset)")
    check.add_argument("--target", required=True)
    check.add_argument("--proxy", required=True)
    check.add_argument("-o", "--output", help="write the check as JSON here")
    check.add_argument("--max-offset", type=int, default=default("proxy.max_offset"),
                       help="largest frame offset searched (default: %(default)s)")
    check.add_argument("--correct-offset", action=argparse.BooleanOptionalAction,
                       default=default("proxy.correct_offset"),
                       help="correct a found constant offset; --no-correct-offset refuses such a proxy")
    check.set_defaults(func=cmd_check_proxy)


def _add_refine_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core refine``."""
    refine = sub.add_parser("refine", help="one video end to end: track the target, fit the carrier to the proxy, "
                            "re-composite (resumes after a kill)")
    refine.add_argument("--target", required=True, help="the original video")
    refine.add_argument("--proxy", required=True, help="its per-frame swapped video")
    refine.add_argument("--output", "-o", required=True, help="the refined video to write")
    refine.add_argument("--identity", help="identity image (hashed into the synthetic-media label)")
    refine.add_argument("--work-dir", help="keep the store and checkpoints here (default: a hidden folder next to "
                        "the output, removed on success)")
    refine.add_argument("--keep-work", action="store_true", help="keep the default work folder")
    refine.add_argument("--json", help="write the result and the time per stage here")
    refine.add_argument("--config", help="read defaults from the face:, carrier: and encode: sections of this YAML")
    refine.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_fit_options(refine)
    _add_composite_options(refine)
    _add_encode_options(refine)
    refine.set_defaults(func=cmd_refine)


def _add_prior3d_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core prior3d``."""
    from nice_core.prior3d.stage import Prior3DConfig

    prior = sub.add_parser("prior3d", help="the 3D prior of one video: UV unwrap, lighting, albedo, detail, shape "
                           "and identity of the target, the proxy and the identity, into an HDF5 file")
    prior.add_argument("--store", required=True, help="the target's face.h5 from `nice-core track`")
    prior.add_argument("--proxy", help="the proxy video (its appearance on the target's geometry)")
    prior.add_argument("--check", help="the proxy's `nice-core check-proxy` JSON (frame offset, rescale)")
    prior.add_argument("--identity", help="the identity image or clip (left out, or the target itself: a self-swap)")
    prior.add_argument("-o", "--output", required=True, help="the HDF5 file to write (prior3d.h5)")
    prior.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    prior.add_argument("--config", help="read defaults from the prior3d: section of this YAML file")
    prior.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_dataclass_options(prior.add_argument_group("3D prior"), Prior3DConfig)
    prior.set_defaults(func=cmd_prior3d)


def cmd_prior3d(args: argparse.Namespace, cleanup: _Cleanup) -> int:
    from nice_core.prior3d.stage import Prior3DConfig, build_prior3d

    config = dataclass_from_args(Prior3DConfig, args, _load_section(args.config, "prior3d"))
    if args.check and not args.proxy:
        raise NiceError("--check needs --proxy")
    check = _read_proxy_check(args.check) if args.check else None
    output = cleanup.track(Path(args.output))
    result = build_prior3d(args.store, output, proxy=args.proxy, check=check, identity=args.identity,
                           config=config, threads=args.threads, show_progress=not args.quiet)
    print(f"3D prior: {result.summary()} -> {output}")
    return 0


def _add_fit_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core fit``."""
    fit = sub.add_parser("fit", help="fit the carrier of one video (checkpoints every epoch; a rerun resumes)")
    fit.add_argument("--store", required=True, help="the target's face.h5 from `nice-core track`")
    fit.add_argument("--proxy", required=True, help="the proxy video")
    fit.add_argument("--check", help="the proxy's `nice-core check-proxy` JSON (frame offset, rescale)")
    fit.add_argument("--prior3d", help="the video's prior3d.h5 from `nice-core prior3d` (needed by the 3D losses)")
    fit.add_argument("-o", "--output", required=True, help="the fitted carrier (.safetensors)")
    fit.add_argument("--checkpoint-dir", help="per-epoch checkpoints (default: OUTPUT's folder/checkpoint)")
    fit.add_argument("--proxy-crops", help="the proxy-crop cache to write or reuse (default: OUTPUT's folder/"
                     "proxy_crops.h5); the store is only read")
    fit.add_argument("--restart", action="store_true", help="discard a checkpoint of another fit instead of refusing")
    fit.add_argument("--config", help="read defaults from the carrier: section of this YAML file")
    _add_fit_options(fit)
    fit.set_defaults(func=cmd_fit)


def _add_composite_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core composite``."""
    comp = sub.add_parser("composite", help="run a fitted carrier on every frame and paste it back: the refined video")
    comp.add_argument("--target", required=True)
    comp.add_argument("--store", required=True, help="the target's face.h5")
    comp.add_argument("--carrier", required=True, help="the fitted carrier from `nice-core fit`")
    comp.add_argument("-o", "--output", required=True, help="the refined video to write")
    comp.add_argument("--proxy", help="the proxy (hashed into the synthetic-media label)")
    comp.add_argument("--identity", help="the identity image (hashed into the label)")
    comp.add_argument("--proxy-crops", help="the fit's proxy-crop cache, for the swap region (default: the "
                      "carrier's folder/proxy_crops.h5)")
    comp.add_argument("--device", help="cpu (default), cuda[:N] or auto")
    comp.add_argument("--config", help="read defaults from the encode: section of this YAML file")
    comp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_composite_options(comp)
    _add_encode_options(comp)
    comp.set_defaults(func=cmd_composite)


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core demo``."""
    demo = sub.add_parser("demo", help="the whole chain on one video without Snakemake: self-swap proxy, carrier, "
                          "composite, metrics, report (default: the bundled sample)")
    demo.add_argument("video", nargs="?", help="a clip of one person (default: the bundled sample)")
    demo.add_argument("-o", "--output", default="demo", metavar="DIR", help="output folder (default: ./demo)")
    demo.add_argument("--proxy", help="use this proxy instead of the built-in self-swap")
    demo.add_argument("--quick", action="store_true", help="a faster, rougher run (smaller fit budget, no hands)")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_fit_options(demo, warm_start=False)
    demo.set_defaults(func=cmd_demo)


def _add_eval_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core eval``."""
    ev = sub.add_parser("eval", help="stability, attribute, identity, detail and fidelity metrics of a video")
    ev.add_argument("--target", required=True, help="the original video (its motion and face are the reference)")
    ev.add_argument("--video", required=True, help="the video to evaluate (e.g. the refined output)")
    ev.add_argument("--proxy", help="the proxy, evaluated alongside for a proxy-vs-output table")
    ev.add_argument("--identity", help="identity image: adds the identity distance")
    ev.add_argument("--reference", help="clean ground truth (e.g. a benchmark's clean.mp4): adds PSNR and SSIM")
    ev.add_argument("--subject", default="largest", help="whose face the metrics follow, as in tracking: largest, "
                    "index:N (N-th from the left) or a reference image (default: largest); the other videos are "
                    "measured on the face at the same place")
    ev.add_argument("--json", help="write every number, per-frame curves included, to this JSON file")
    ev.add_argument("--video-check", help="a `nice-core check-proxy` JSON for --video: apply its frame offset")
    ev.add_argument("--proxy-check", help="a `nice-core check-proxy` JSON for --proxy: apply its frame offset")
    ev.add_argument("--uncertainty", metavar="VIDEO", help="the carrier's uncertainty video (composite "
                    "--save-uncertainty): recorded for the report's frame strips")
    ev.add_argument("--store", help="the target's face.h5 (with --prior3d: the UV detail transfer)")
    ev.add_argument("--prior3d", help="the target's prior3d.h5: adds the UV detail transfer and the report's UV maps")
    ev.add_argument("--motion", help="the target's motion.h5 from `nice-core motion`: read instead of computing the "
                    "target's optical flow (the same numbers)")
    ev.add_argument("--name", help="name for reports (default: the video's file name)")
    ev.add_argument("--method", help="how the proxy was made, for data-set reports")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_eval)
    mo = sub.add_parser("motion", help="the target's optical flow for e_stab, once per target (read by `nice-core "
                        "eval --motion` for every video of that target)")
    mo.add_argument("--target", required=True, help="the original video")
    mo.add_argument("-o", "--output", required=True, help="the motion file to write (HDF5)")
    mo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    mo.set_defaults(func=cmd_motion)


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core report``."""
    rep = sub.add_parser("report", help="HTML report (offline, self-contained) from `nice-core eval` JSON files:"
                         " one file gives a per-video page, several a data-set table (+ .csv/.json)")
    rep.add_argument("metrics", nargs="+", help="eval JSON files")
    rep.add_argument("-o", "--output", required=True, help="the HTML page to write")
    rep.add_argument("--videos-dir", help="data-set report: where per-video pages go (default: OUTPUT's folder/videos)")
    rep.add_argument("--expect", nargs="*", help="data-set report: every video name of the run (missing = failed)")
    rep.add_argument("--logs", help="data-set report: the workflow's log folder, to list each failure's error")
    rep.set_defaults(func=cmd_report)


def _add_verify_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core verify``."""
    verify = sub.add_parser("verify", help="look for the synthetic-media label and watermark in a video or image"
                            " (exit 0: found, 1: not found, 2: error)")
    verify.add_argument("file")
    verify.set_defaults(func=cmd_verify)


def _add_config_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core config``."""
    conf = sub.add_parser("config", help="check workflow config files and print the effective configuration")
    conf.add_argument("files", nargs="*", metavar="FILE",
                      help="config files, merged in order as Snakemake does (default: ./config.yaml if present)")
    conf.set_defaults(func=cmd_config)


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:
    """``nice-core bench``."""
    from nice_core.groundtruth.clip import BenchConfig

    bench = sub.add_parser("bench", help="benchmark data with ground truth")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="ACTION")
    make = bench_sub.add_parser("make", help="write target.mp4, clean.mp4 (consistent edit), proxy.mp4 "
                                "(flickering) and meta.json from a real clip")
    make.add_argument("source", help="a real clip of one person")
    make.add_argument("outdir", help="folder to write (new, or a previous benchmark folder)")
    make.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_dataclass_options(make.add_argument_group("benchmark"), BenchConfig)
    _add_encode_options(make)
    make.set_defaults(func=cmd_bench_make)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nice-core", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"nice-core {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from nice_core.detect.cli import add_parser as add_detect_parser
    from nice_core.provenance.record import add_parser as add_provenance_parser

    commands = (_add_probe_parser, _add_track_parser, _add_swap_parser, _add_external_swap_parser,
                _add_check_proxy_parser, _add_refine_parser, _add_prior3d_parser, _add_fit_parser,
                _add_composite_parser, _add_demo_parser, _add_eval_parser, _add_report_parser, _add_verify_parser,
                _add_config_parser, _add_bench_parser,
                add_provenance_parser,  # provenance: the workflow's per-video record
                add_detect_parser)  # the detection study
    for add_parser in commands:
        add_parser(sub)
    return parser


#: Argument destinations that name a command's inputs, its output files and its output folders (the
#: ``output`` of these commands is a folder). Checked together before any command runs.
INPUT_ARGS = ("video", "target", "proxy", "identity", "reference", "store", "prior3d", "motion", "carrier", "check",
              "video_check", "proxy_check", "probe", "config", "uncertainty", "vgg19_weights", "source", "metrics",
              "file", "audio", "c2pa_key", "c2pa_cert", "index", "model", "records", "init_2d",
              "init_i3d")
OUTPUT_FILE_ARGS = ("output", "json", "save_uncertainty", "log", "deepfakebench")
OUTPUT_FOLDER_ARGS = ("outdir", "work_dir", "checkpoint_dir", "videos_dir", "run_dir", "report_dir")
FOLDER_OUTPUT_COMMANDS = ("track", "demo")
VIDEO_OUTPUT_COMMANDS = ("swap", "external-swap", "refine", "composite")


def _flag(dest: str) -> str:
    return {"video": "VIDEO", "source": "SOURCE", "metrics": "METRICS", "file": "FILE", "outdir": "OUTDIR"}.get(
        dest, "--" + dest.replace("_", "-"))


def _guard_paths(args: argparse.Namespace) -> list[str]:
    """Refuse an output that is an input, used twice or not writable, before any work (:mod:`nice_core.io.guard`);
    return the outputs, which :func:`main` locks (:mod:`nice_core.io.lock`)."""
    from nice_core.io.guard import check_paths

    def pick(names: Sequence[str]) -> dict:
        return {_flag(n): getattr(args, n) for n in names if isinstance(getattr(args, n, None), (str, list))}

    files, folders = pick(OUTPUT_FILE_ARGS), pick(OUTPUT_FOLDER_ARGS)
    if args.command in FOLDER_OUTPUT_COMMANDS and "--output" in files:
        folders["--output"] = files.pop("--output")
    check_paths(pick(INPUT_ARGS), files, folders)
    outputs = [path for value in (*files.values(), *folders.values()) for path in
               (value if isinstance(value, list) else [value])]
    if args.command in VIDEO_OUTPUT_COMMANDS:
        from nice_core.io.writer import check_output_format

        for video in (getattr(args, "output", None), getattr(args, "save_uncertainty", None)):
            if video:
                check_output_format(video, getattr(args, "codec", None) or "libx264")
    return outputs


class Terminated(KeyboardInterrupt):
    """SIGTERM (what ``kill``, ``timeout`` and SLURM send), handled like Ctrl-C: partial outputs go, work kept."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _close_native_stderr() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


def _last_line(message: str) -> None:
    """Print the error line and keep it the last: mediapipe's native side logs warnings while the process
    shuts down, so once the line is out the native stderr is closed at exit."""
    import atexit

    print(message, file=sys.stderr, flush=True)
    if "mediapipe" in sys.modules:
        atexit.register(_close_native_stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import contextlib
    import signal

    from nice_core.io.lock import output_lock
    from nice_core.io.threads import thread_budget, thread_budget_applied

    parser = build_parser()
    args = parser.parse_args(argv)
    # Before torch, OpenCV or a codec starts its pool; undone on return (a command run in-process).
    budget = thread_budget_applied(getattr(args, "threads", None) or thread_budget())
    func: Callable[[argparse.Namespace, _Cleanup], int] = args.func
    cleanup = _Cleanup()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with budget, contextlib.ExitStack() as locks:
            for output in _guard_paths(args):
                locks.enter_context(output_lock(output))
            return func(args, cleanup)
    except NiceError as err:
        cleanup.run()
        _last_line(f"nice-core: error: {err}")
        return err.exit_code
    except Terminated:
        cleanup.run()
        print("nice-core: terminated (SIGTERM); finished stages are kept, a rerun resumes", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        cleanup.run()
        print("nice-core: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        if not is_disk_full(err):
            raise
        cleanup.run()
        _last_line(f"nice-core: error: no space left on device writing {err.filename or 'an output'}")
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
