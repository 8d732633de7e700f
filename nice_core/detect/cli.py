"""``nice-core detect index | clips | reencode | train | eval | report``: the detection study's verbs, one step each.

A study by hand (the workflow's ``rules/detect.smk`` runs the same steps)::

    nice-core detect index --ffpp FF++ --method FaceSwap --compression c23 --split train=train.json \\
        --split val=val.json --split test=test.json --refined results --celebdf Celeb-DF-v2 -o index.json
    nice-core detect clips VIDEO --store face.h5 -o clips/<id>.h5          # per video of the index
    nice-core detect train --index index.json --clips-dir clips --condition B --seed 1 --run-dir runs/B-1
    nice-core detect eval --model runs/B-1/model.safetensors --index index.json --clips-dir clips \\
        --test-set celebdf -o evals/B-1-celebdf.json
    nice-core detect report evals/*.json --report-dir report
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def _condition_sources(args: argparse.Namespace) -> tuple[str, ...]:
    from nice_core.detect.study import CONDITIONS, check_condition
    from nice_core.errors import InputError

    if args.sources:
        return check_condition(args.condition, [s.strip() for s in args.sources.split(",") if s.strip()])
    if args.condition not in CONDITIONS:
        raise InputError(f"condition {args.condition!r} is not one of {', '.join(CONDITIONS)}; name its sources "
                         "with --sources original,refined,...")
    return CONDITIONS[args.condition]


def cmd_index(args: argparse.Namespace, cleanup) -> int:
    from nice_core.detect.index import celebdf_entries, export_deepfakebench, ffpp_entries, refined_entries, write_index
    from nice_core.errors import InputError

    splits = {}
    for item in args.split or []:
        name, _, path = item.partition("=")
        if not path:
            raise InputError(f"--split wants NAME=FILE (train=train.json), got {item!r}")
        splits[name] = path
    entries = []
    if args.ffpp:
        if not args.method or not splits:
            raise InputError("an FF++ index needs --method and the official --split files")
        entries += ffpp_entries(args.ffpp, args.method, args.compression, splits)
        if args.refined:
            entries += refined_entries(args.refined, entries)
    if args.celebdf:
        entries += celebdf_entries(args.celebdf)
    if not entries:
        raise InputError("nothing to index: give --ffpp and/or --celebdf")
    write_index(args.output, entries)
    if args.deepfakebench:
        export_deepfakebench(entries, args.deepfakebench)
    counts = {}
    for e in entries:
        counts[(e.dataset, e.source, e.split)] = counts.get((e.dataset, e.source, e.split), 0) + 1
    summary = ", ".join(f"{d}/{s}/{sp}: {n}" for (d, s, sp), n in sorted(counts.items()))
    print(f"nice-core: {len(entries)} videos indexed in {args.output} ({summary})", file=sys.stderr)
    return 0


def cmd_clips(args: argparse.Namespace, cleanup) -> int:
    from nice_core.detect.run import cut_clips

    mark = None
    if args.watermark:  # the payload a synthetic output made from this video would carry
        from nice_core.io.digest import file_sha256
        from nice_core.provenance.watermark import payload_from_inputs

        mark = payload_from_inputs([file_sha256(args.video)])
    reason = cut_clips(args.video, args.store, args.output, args.length, args.count, args.size, mark)
    if reason:
        print(f"nice-core: warning: {args.video}: {reason}; it is left out of the study and listed in its report",
              file=sys.stderr)
    return 0


def _model_config(args: argparse.Namespace):
    from nice_core.detect.i3d import I3DConfig

    changes = {"temporal_kernel": args.temporal_kernel} if args.temporal_kernel else {}
    return I3DConfig.r50(**changes) if args.arch == "r50" else I3DConfig.small(**changes)


def _init(args: argparse.Namespace, model_config) -> tuple[dict | None, str]:
    """Start weights: a 2D ResNet state dict inflated, the user's I3D checkpoint, or none."""
    if not args.init_2d and not args.init_i3d:
        return None, "from scratch"
    from nice_core.detect.i3d import I3DResNet, inflate_2d_state_dict
    from nice_core.errors import InputError
    from nice_core.io.digest import file_sha256

    path = args.init_2d or args.init_i3d
    state = _load_state_dict(path)
    model = I3DResNet(model_config)
    if args.init_2d:
        missing = inflate_2d_state_dict(model, state)
        note = f"inflated from the 2D ResNet {path} (sha256 {file_sha256(path)[:12]})"
    else:
        own = model.state_dict()
        wanted = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not wanted:
            raise InputError(f"{path}: no tensor matches the {args.arch} I3D's names and shapes")
        model.load_state_dict(wanted, strict=False)
        missing = sorted(set(own) - set(wanted))
        note = f"the I3D checkpoint {path} (sha256 {file_sha256(path)[:12]})"
    if missing:
        note += f"; {len(missing)} tensors not in it start from scratch"
    return model.state_dict(), note


def _load_state_dict(path: str) -> dict:
    """A state dict from ``.safetensors`` or a torch pickle (weights only, never code)."""
    import torch

    from nice_core.errors import InputError

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path)
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (any unreadable file is the user's input error)
        raise InputError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from None
    for key in ("state_dict", "model", "model_state"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise InputError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def cmd_train(args: argparse.Namespace, cleanup) -> int:
    from nice_core.detect.index import read_index
    from nice_core.detect.run import train_condition
    from nice_core.detect.train import TrainConfig

    entries = read_index(args.index)
    sources = _condition_sources(args)
    model_config = _model_config(args)
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, val_every=args.val_every,
                         threads=args.threads, device=args.device, precision=args.precision)
    init, note = _init(args, model_config)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    path = train_condition(entries, args.clips_dir, args.condition, sources, args.seed, args.run_dir, model_config,
                           config, init, note, log)
    print(f"nice-core: detector of condition {args.condition} (seed {args.seed}) in {path}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace, cleanup) -> int:
    from nice_core.detect.index import read_index
    from nice_core.detect.run import evaluate_detector

    record = evaluate_detector(args.model, read_index(args.index), args.clips_dir, args.test_set, args.output,
                               args.batch_size, args.device, args.precision, args.probe_clips_dir)
    m = record["metrics"]
    print(f"nice-core: {record['condition']} seed {record['seed']} on {args.test_set}: AUC {m['auc']:.3f}, "
          f"balanced accuracy {m['balanced_acc']:.3f} over {m['n']} videos"
          + (f" ({len(record['left_out'])} left out)" if record["left_out"] else ""), file=sys.stderr)
    return 0


def cmd_reencode(args: argparse.Namespace, cleanup) -> int:
    from nice_core.detect.parity import reencode_for_parity

    reencode_for_parity(args.video, args.output, args.compression, args.preset, args.labelled_as)
    mark = {"real": "the data-set parity mark (not synthetic)", "fake": "a synthetic output's label and mark",
            "probe": "a synthetic output's mark (the watermark probe's stand-in)"}[args.labelled_as]
    print(f"nice-core: {args.output}: {args.video} re-encoded like the refined {args.compression} videos, with "
          f"{mark}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace, cleanup) -> int:
    from nice_core.detect.report import load_records, write_study_report

    paths = write_study_report(load_records(args.records), args.report_dir, args.baseline)
    print(f"nice-core: detection report in {paths['html']}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nice-core detect`` and its verbs on the CLI's subparsers."""
    from nice_core.config import default
    from nice_core.detect.study import CONDITIONS, PARITY_AS, TEST_SETS

    parser = sub.add_parser("detect", help="the detection study: index, clips, train, eval, report "
                                           "(a video-level deepfake detector on original, per-frame and refined data)")
    verbs = parser.add_subparsers(dest="detect_command", required=True, metavar="VERB")

    index = verbs.add_parser("index", help="the study's video index (FF++ with its split, refined results, "
                                           "Celeb-DF v2's test list) as JSON")
    index.add_argument("--ffpp", help="FaceForensics++ root (original_sequences/, manipulated_sequences/)")
    index.add_argument("--method", action="append", help="an FF++ method folder, e.g. FaceSwap (repeatable)")
    index.add_argument("--compression", default="c23", help="raw, c23 or c40 (default c23)")
    index.add_argument("--split", action="append", metavar="NAME=FILE", help="an official split file: train=, "
                                                                              "val= or test= (repeatable)")
    index.add_argument("--refined", help="this pipeline's results folder with refined_sequences/")
    index.add_argument("--celebdf", help="Celeb-DF v2 root (with List_of_testing_videos.txt)")
    index.add_argument("-o", "--output", required=True, help="the index to write (JSON)")
    index.add_argument("--deepfakebench", help="also export the index in DeepfakeBench's JSON layout here")
    index.set_defaults(func=cmd_index)

    clips = verbs.add_parser("clips", help="cut one video's face clips (consecutive aligned crops) through a "
                                           "tracking store")
    clips.add_argument("video", help="the video")
    clips.add_argument("--store", required=True, help="the tracking store (face.h5; an FF++ fake: its original's)")
    clips.add_argument("-o", "--output", required=True, help="the clips file to write (HDF5)")
    for key, help_text in (("length", "consecutive frames per clip"), ("count", "clips per video, spread over it"),
                           ("size", "crop side in pixels")):
        value = default(f"detector.clips.{key}")
        clips.add_argument(f"--{key}", type=int, default=value, help=f"{help_text} (default {value})")
    clips.add_argument("--watermark", action="store_true", help="embed nice-core's (synthetic) watermark in every "
                                                                "frame first: the watermark probe's clips of reals")
    clips.set_defaults(func=cmd_clips)

    train = verbs.add_parser("train", help="train the detector of one condition at one seed (resumes after a kill)")
    train.add_argument("--index", required=True, help="the study's index (nice-core detect index)")
    train.add_argument("--clips-dir", required=True, help="the folder of clips files (<id>.h5)")
    train.add_argument("--condition", required=True, help=f"{', '.join(CONDITIONS)} or a name of your own "
                                                          "(with --sources)")
    train.add_argument("--sources", help="the condition's sources, comma separated (original,per-frame,refined,"
                                         "external)")
    train.add_argument("--seed", type=int, default=1, help="the seed (weights, batches); default 1")
    train.add_argument("--run-dir", required=True, help="the run's folder (checkpoint/, model.safetensors)")
    train.add_argument("--arch", choices=("small", "r50"), default=default("detector.train.arch"),
                       help="small (CPU, tests) or r50 (GPU runs); default %(default)s")
    train.add_argument("--temporal-kernel", type=int, help="frames each block's first convolution sees (1: "
                                                           "frame-wise, a control)")
    train.add_argument("--steps", type=int, default=default("detector.train.steps"),
                       help="optimizer steps, the same for every condition (default %(default)s)")
    train.add_argument("--batch-size", type=int, default=default("detector.train.batch_size"),
                       help="clips per step, half real, half fake (default %(default)s)")
    train.add_argument("--lr", type=float, default=default("detector.train.lr"), help="Adam's learning rate")
    train.add_argument("--val-every", type=int, default=default("detector.train.val_every"),
                       help="steps between validation checks and checkpoints (default %(default)s)")
    train.add_argument("--init-2d", help="start from this 2D ResNet state dict, inflated (.safetensors or .pth)")
    train.add_argument("--init-i3d", help="start from your own I3D checkpoint (.safetensors or .pth)")
    train.add_argument("--device", default=default("detector.train.device"), help="cpu or cuda")
    train.add_argument("--precision", choices=("fp32", "bf16"), default=default("detector.train.precision"),
                       help="bf16 autocast on CUDA")
    train.add_argument("--threads", type=int, help="CPU threads (default: the job's budget)")
    train.set_defaults(func=cmd_train)

    ev = verbs.add_parser("eval", help="score one test set with a trained detector (JSON record)")
    ev.add_argument("--model", required=True, help="model.safetensors of nice-core detect train")
    ev.add_argument("--index", required=True, help="the study's index")
    ev.add_argument("--clips-dir", required=True, help="the folder of clips files")
    ev.add_argument("--test-set", required=True, choices=sorted(TEST_SETS), help="the videos scored")
    ev.add_argument("-o", "--output", required=True, help="the record to write (JSON)")
    ev.add_argument("--probe-clips-dir", help="clips of the real test videos cut with --watermark: also run the "
                                              "watermark probe (does the detector key on the mark?)")
    ev.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    ev.add_argument("--device", default="cpu", help="cpu or cuda")
    ev.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 autocast on CUDA")
    ev.add_argument("--threads", type=int, help="CPU threads (default: the job's budget)")
    ev.set_defaults(func=cmd_eval)

    reencode = verbs.add_parser("reencode", help="an FF++ video re-encoded like the refined ones, marked and "
                                                 "labelled as --as says: every class shares one encoder path")
    reencode.add_argument("video", help="the FF++ video as found (an original, or a per-frame swap)")
    reencode.add_argument("-o", "--output", required=True, help="the copy to write (.mp4 or .mkv)")
    reencode.add_argument("--compression", default="c23", help="the refined videos' FF++ level: raw, c23, c40")
    reencode.add_argument("--preset", help="x264 preset (default: the config's encode.preset)")
    reencode.add_argument("--as", dest="labelled_as", choices=PARITY_AS, required=True,
                          help="real: an original, with the parity payload (not synthetic); fake: a per-frame "
                               "swap, labelled synthetic; probe: an original marked like a synthetic output "
                               "(the watermark probe's copy)")
    reencode.set_defaults(func=cmd_reencode)

    report = verbs.add_parser("report", help="the study's table over seeds, paired differences and ROC curves "
                                             "(HTML, CSV, JSON)")
    report.add_argument("records", nargs="+", help="eval records (nice-core detect eval)")
    report.add_argument("--report-dir", required=True, help="where detection.{html,csv,json} go")
    report.add_argument("--baseline", default="A", help="the condition the differences subtract (default A)")
    report.set_defaults(func=cmd_report)
    return parser
