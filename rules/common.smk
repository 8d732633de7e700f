# Helpers shared by the rule files; the validated config, the run's videos, their paths and resources.
# Only light, pure-Python parts of nice_core are imported here, so building the DAG (and `snakemake -n`)
# never loads torch, PyAV or h5py; heavier checks are imported only where a run needs them.

import json
import re
import shlex
import sys
from pathlib import Path

from nice_core.carrier.config import check_fit_overrides
from nice_core.chain import WorkFiles
from nice_core.config import stage_flags, validate
from nice_core.errors import InputError, NiceError
from nice_core.inputs.videos import output_encoding, target_key, warm_start_sources, workflow_videos


def check_external_swapper(config, videos):
    """Say what an external swapper lacks before any job starts (only when it will make a proxy; the
    import is heavier than the rest of this file)."""
    if config["proxy"]["generator"] == "external" and any(v.generated_proxy for v in videos.values()):
        from nice_core.proxy.external import ExternalSwapper

        try:
            swapper = ExternalSwapper(**config["external"])
        except ValueError as err:
            raise InputError(f"config.yaml: external: {err}") from None
        swapper.check_available()


# One line naming the bad key, and no traceback (nice_core/config/config.schema.yaml holds every key).
try:
    config.update(validate(config, "config.yaml"))
    check_fit_overrides(config["carrier"]["fit"], "config.yaml: carrier.fit")
    VIDEOS = workflow_videos(config)
    check_external_swapper(config, VIDEOS)
except NiceError as err:
    sys.exit(f"nice-core: error: {err}")

RESULTS = Path(config["results"])
WORK = RESULTS / "work"
# Each target video's own folder (probe, audio, face store, preview), shared by every video of that target:
# FF++'s 4-5 methods of one original are probed and tracked once. "_" cannot start a video's name.
TARGET_WORK = WORK / "_targets"
TARGET_KEY = {name: v.target_key for name, v in VIDEOS.items()}  # hashed once, read by every helper
TARGETS = {TARGET_KEY[name]: str(v.target) for name, v in VIDEOS.items()}
LOGS = RESULTS / "logs"
DETECT = RESULTS / "detect"
BENCH = RESULTS / "benchmarks"
REPORT = RESULTS / "report"
VIDEO_NAMES = " ".join(VIDEOS)
OUTPUT_VIDEO = {str(v.output_relpath): name for name, v in VIDEOS.items()}
GENERATOR = config["proxy"]["generator"]
PREVIEW = config["face"]["preview"]
SAVE_UNCERTAINTY = config["composite"]["save_uncertainty"]
PROXY_RESOURCES = "proxy" if GENERATOR == "swap" else "external_proxy"


def study():
    """The detection study of ``detector.index`` (nice_core.detect.plan), or None; refused in one line."""
    if not config["detector"]["index"]:
        return None
    encode = config["encode"]
    if config["detector"]["parity"] and (encode["visible_label"] or not encode["match_ffpp"]):
        sys.exit(
            "nice-core: error: config.yaml: detector.parity re-encodes the FF++ videos at their FF++ level"
            " without a visible mark, so the refined ones must be too: set encode.visible_label: false and"
            " encode.match_ffpp: true (or detector.parity: false)"
        )
    from nice_core.detect.plan import study_plan

    try:
        return study_plan(
            config["detector"]["index"], config["detector"]["conditions"], config["detector"]["test_sets"]
        )
    except NiceError as err:
        sys.exit(f"nice-core: error: config.yaml: detector.index: {err}")


STUDY = study()
# The study's videos are tracked like the run's targets (each once; an FF++ fake through its original's store).
for _video in STUDY.videos_to_track() if STUDY else []:
    TARGETS.setdefault(target_key(_video), _video)
STUDY_IDS = STUDY.ids if STUDY else []
STUDY_RUNS = [(c, s) for c in config["detector"]["conditions"] for s in config["detector"]["seeds"]] if STUDY else []


def detect_clips(entry_id, probe=False):
    """A study video's clips file (``probe``: cut from watermarked frames, for the watermark probe)."""
    return DETECT / ("probe_clips" if probe else "clips") / f"{entry_id}.h5"


def detect_parity_role(entry_id):
    """How the entry is re-encoded for encoding parity (nice_core.detect.study.parity_role), or None."""
    from nice_core.detect.study import parity_role

    return parity_role(STUDY.entry(entry_id)) if config["detector"]["parity"] else None


def detect_source(wildcards):
    """The entry's video as the study found it."""
    return STUDY.entry(wildcards.entry).path


def detect_video(wildcards):
    """The video the entry's clips are cut from: its parity copy, or the video as found."""
    if detect_parity_role(wildcards.entry):
        return DETECT / "parity" / f"{wildcards.entry}.mp4"
    return detect_source(wildcards)


def detect_probe_video(wildcards):
    """The video a real test entry's probe clips are cut from: its probe copy (re-encoded like its parity copy
    but marked like a synthetic output), or the video as found (marked while its clips are cut)."""
    if detect_parity_role(wildcards.entry):
        return DETECT / "probe" / f"{wildcards.entry}.mp4"
    return detect_source(wildcards)


def detect_probe_clip_flags(wildcards):
    mark = "" if detect_parity_role(wildcards.entry) else " --watermark"
    return flags("detector.clips") + mark


def detect_reencode_flags(wildcards, probe=False):
    """`nice-core detect reencode`'s flags for the entry's parity copy (``probe``: its probe copy): the
    refined videos' compression and x264 preset."""
    role = "probe" if probe else detect_parity_role(wildcards.entry)
    preset = config["encode"]["preset"]
    compression = STUDY.entry(wildcards.entry).compression
    return f"--compression {compression} --as {role}" + (f" --preset {preset}" if preset else "")


def detect_store(wildcards):
    """The tracking store the entry's clips are cut through (an FF++ fake: its original's)."""
    return target_files(target_key(STUDY.store_video[wildcards.entry])).store


def detect_training_clips(wildcards):
    return [detect_clips(i) for i in STUDY.training_ids(wildcards.condition)]


def detect_eval_clips(wildcards):
    return [detect_clips(i) for i in STUDY.test_ids(wildcards.test_set, wildcards.condition)]


def detect_probe_clips(wildcards):
    if not config["detector"]["watermark_probe"]:
        return []
    return [detect_clips(i, probe=True) for i in STUDY.probe_ids(wildcards.test_set)]


def detect_probe_flags(wildcards, input):
    return f"--probe-clips-dir {shlex.quote(str(DETECT / 'probe_clips'))}" if input.probe else ""


def detect_sources(wildcards):
    return ",".join(STUDY.conditions[wildcards.condition])


def detect_run_dir(wildcards, output):
    """A training job's folder (its model, record and resumable checkpoint)."""
    return Path(output.model).parent


def detect_evals():
    return [DETECT / "evals" / f"{c}-{s}-{t}.json" for c, s in STUDY_RUNS for t in config["detector"]["test_sets"]]


def detect_report():
    """The study's report, when the run has a study (the default target then includes it)."""
    return [DETECT / "report" / "detection.html"] if STUDY else []


def work(name):
    """A video's work files (nice_core.chain.WorkFiles: their names live there), its target's in the
    target's shared folder; ``work("{video}")`` gives the rules' patterns of the video's own files."""
    key = TARGET_KEY.get(name)
    return WorkFiles(WORK / name, target_files(key).root if key else None)


def target_files(key):
    """A target's shared work files (probe, audio, store, preview); ``target_files("{target}")`` gives the
    patterns of the per-target rules."""
    return WorkFiles(TARGET_WORK / key)


def target_of(wildcards):
    return TARGETS[wildcards.target]


def store_of(wildcards):
    """The face store of the video's target (made once per target)."""
    return work(wildcards.video).store


def motion_of(wildcards):
    """The optical flow of the video's target (computed once per target, removed after its evaluations)."""
    return work(wildcards.video).motion


# carrier.warm_start: each target's first video warm-starts the fits of the others (nice_core.inputs.videos)
WARM_FROM = warm_start_sources(VIDEOS) if config["carrier"]["warm_start"] else {}


def warm_start(wildcards):
    """The carrier the video's fit starts from (its target's first video's), or none."""
    source = WARM_FROM.get(wildcards.video)
    return [str(work(source).carrier)] if source else []


def warm_flags(wildcards):
    """``nice-core fit``'s warm-start flags for the video: the carrier to start from, the smaller budget."""
    source = WARM_FROM.get(wildcards.video)
    if not source:
        return ""
    return f"--init {shlex.quote(str(work(source).carrier))} --set steps={config['carrier']['warm_start']}"


def log_names():
    """Where each video's logs are: its own, and those of the per-target jobs of its target."""
    return {name: [name, key] for name, key in TARGET_KEY.items()}


def flags(*sections):
    """The command-line flags of config sections (nice_core.config.stage_flags)."""
    return " ".join(stage_flags(config, s) for s in sections)


def res(rule_name, key):
    """A resource of a rule (resources.<rule> in the config; every rule has defaults in the schema)."""
    return config["resources"][rule_name].get(key)


def spec(wildcards):
    return VIDEOS[wildcards.video]


def video_path(wildcards):
    return str(spec(wildcards).target)


def identity_path(wildcards):
    identity = spec(wildcards).identity
    return str(identity if identity is not None else spec(wildcards).target)  # None: a self-swap


def prior3d_models(wildcards):
    """The user's own model files of the prior3d deca backend (inputs, so a changed file reruns the stage)."""
    prior = config["prior3d"]
    if prior["backend"] != "deca":
        return []
    return [prior[key] for key in ("deca_model", "flame_model") if prior[key]]


def proxy_of(name):
    given = VIDEOS[name].proxy
    return str(given) if given is not None else str(work(name).proxy)


def proxy_path(wildcards):
    return proxy_of(wildcards.video)


def refined_path(name):
    return RESULTS / VIDEOS[name].output_relpath


def uncertainty_path(name):
    return RESULTS / "uncertainty" / VIDEOS[name].output_relpath


def track_outputs():
    outputs = {"store": target_files("{target}").store}
    if PREVIEW:
        outputs["preview"] = target_files("{target}").preview
    return outputs


def proxy_inputs(wildcards):
    inputs = {"target": video_path(wildcards), "identity": identity_path(wildcards)}
    if GENERATOR == "swap":
        inputs["store"] = work(wildcards.video).store  # the built-in swapper reuses the tracked face
    return inputs


def proxy_command(wildcards, input, output):
    """The command that makes a missing proxy: the built-in swapper or the external tool."""
    q = shlex.quote
    if GENERATOR == "swap":
        return (
            f"nice-core swap --identity {q(input.identity)} --target {q(input.target)}"
            f" --store {q(input.store)} -o {q(output.proxy)} {flags('swap', 'encode')}"
        )
    tool_log = LOGS / "proxy" / f"{wildcards.video}.tool.log"
    return (
        f"nice-core external-swap {flags('external')} --target {q(input.target)}"
        f" --identity {q(input.identity)} -o {q(output.proxy)} --log {q(str(tool_log))}"
    )


def target_dir(wildcards):
    return target_files(wildcards.target).root


def audio_path(wildcards):
    return target_files(wildcards.target).audio


def checkpoint_dir(wildcards):
    return work(wildcards.video).checkpoints


def composite_input(wildcards):
    name = OUTPUT_VIDEO[wildcards.outpath]
    return {
        "target": str(VIDEOS[name].target),
        "store": work(name).store,
        "proxy_crops": work(name).proxy_crops,
        "carrier": work(name).carrier,
        "proxy": proxy_of(name),
    }


def composite_outputs():
    outputs = {"video": RESULTS / "{outpath}"}
    if SAVE_UNCERTAINTY:
        outputs["sigma"] = RESULTS / "uncertainty" / "{outpath}"
    return outputs


def composite_extra(wildcards, output):
    words = []
    identity = VIDEOS[OUTPUT_VIDEO[wildcards.outpath]].identity
    if identity is not None:
        words += ["--identity", str(identity)]
    if "sigma" in output.keys():
        words += ["--save-uncertainty", str(output.sigma)]
    return " ".join(map(shlex.quote, words))


def composite_flags(wildcards):
    """The composite stage's flags, with the encoding of this output (an FF++ pair's like FF++'s own)."""
    spec = VIDEOS[OUTPUT_VIDEO[wildcards.outpath]]
    encode = {"encode": output_encoding(spec, config["encode"])}
    return f"{flags('composite')} {stage_flags(encode, 'encode')}"


def evaluated_video(wildcards):
    return refined_path(wildcards.video)


def evaluated_sigma(wildcards):
    return [uncertainty_path(wildcards.video)] if SAVE_UNCERTAINTY else []


def eval_extra(wildcards):
    s = spec(wildcards)
    words = ["--name", wildcards.video, "--method", s.method, "--subject", str(config["face"]["subject"])]
    if SAVE_UNCERTAINTY:
        words += ["--uncertainty", str(uncertainty_path(wildcards.video))]
    if s.identity is not None:
        words += ["--identity", str(s.identity)]
    if s.reference is not None:
        words += ["--reference", str(s.reference)]
    return " ".join(map(shlex.quote, words))


# The run's settings as recorded in every provenance record: what changes results (not the video list or
# the resources).
PROVENANCE_CONFIG = json.dumps(
    {k: v for k, v in config.items() if k not in ("videos", "ffpp", "pairs_csv", "benchmarks", "resources")},
    sort_keys=True,
    default=str,
)


def provenance_inputs(wildcards):
    s = spec(wildcards)
    files = {"target": str(s.target), "proxy": proxy_path(wildcards)}
    if s.identity is not None:
        files["identity"] = str(s.identity)
    if s.reference is not None:
        files["reference"] = str(s.reference)
    return files


def provenance_results(wildcards):
    files = work(wildcards.video)
    files = {
        "probe": files.probe,
        "store": files.store,
        "proxy_check": files.proxy_check,
        "prior3d": files.prior3d,
        "metrics": files.metrics,
        "carrier": files.carrier,
        "refined": refined_path(wildcards.video),
    }
    return {role: str(path) for role, path in files.items()}


def provenance_flags(wildcards):
    s = spec(wildcards)
    video = {
        "target": str(s.target),
        "proxy": None if s.proxy is None else str(s.proxy),
        "identity": None if s.identity is None else str(s.identity),
        "reference": None if s.reference is None else str(s.reference),
        "method": s.method,
    }
    words = [f"--input={role}={path}" for role, path in provenance_inputs(wildcards).items()]
    words += [f"--result={role}={path}" for role, path in provenance_results(wildcards).items()]
    words += ["--video-json", json.dumps(video, sort_keys=True), "--config-json", PROVENANCE_CONFIG]
    return " ".join(map(shlex.quote, words))


def write_partial_report():
    """After a failure: the report from the metrics that exist, listing the failed videos' errors."""
    from nice_core.report.run import build_report

    done = [p for p in (work(name).metrics for name in VIDEOS) if p.is_file()]
    page = build_report(done, REPORT / "report.html", expected=VIDEOS, log_dir=LOGS, log_names=log_names())
    print(
        f"nice-core: some jobs failed; their errors are listed in {page.resolve()} and in the logs under "
        f"{LOGS}/ (rerun the same command to redo only them)"
    )
