import json
import shlex

# Provenance: one record per video, <work>/<video>/provenance.json, written by `nice-core provenance` once
# the video's results exist: the run's config, package versions, seeds, and the SHA-256 of every input and
# result (nice_core/provenance/record.py). The report rule asks for every record, so `snakemake` writes them.
# Later stages' results (the carrier, the refined video) are recorded as soon as their rules exist.

PROVENANCE_CONFIG = json.dumps(
    {k: v for k, v in config.items() if k not in ("videos", "ffpp", "pairs_csv", "benchmarks", "resources")},
    sort_keys=True, default=str)


def provenance_inputs(wildcards):
    s = spec(wildcards)
    files = {"target": str(s.target), "proxy": proxy_path(wildcards)}
    if s.identity is not None:
        files["identity"] = str(s.identity)
    if s.reference is not None:
        files["reference"] = str(s.reference)
    return files


def provenance_results(wildcards):
    work = WORK / wildcards.video
    files = {"probe": work / "probe.json", "store": work / "face.h5", "proxy_check": work / "proxy_check.json",
             "metrics": work / "metrics.json"}
    if rules.has("carrier"):
        files["carrier"] = expand(rules.carrier.output[0], video=wildcards.video)[0]
    if "refined_path" in globals():
        files["refined"] = refined_path(wildcards.video)
    return {role: str(path) for role, path in files.items()}


def provenance_flags(wildcards):
    s = spec(wildcards)
    video = {"target": str(s.target), "proxy": None if s.proxy is None else str(s.proxy),
             "identity": None if s.identity is None else str(s.identity),
             "reference": None if s.reference is None else str(s.reference), "method": s.method}
    flags = [f"--input={role}={path}" for role, path in provenance_inputs(wildcards).items()]
    flags += [f"--result={role}={path}" for role, path in provenance_results(wildcards).items()]
    flags += ["--video-json", json.dumps(video, sort_keys=True), "--config-json", PROVENANCE_CONFIG]
    return " ".join(map(shlex.quote, flags))


rule provenance:
    input:
        unpack(provenance_inputs),
        unpack(provenance_results),
    output:
        record=report(WORK / "{video}" / "provenance.json", category="Provenance", labels={"video": "{video}"}),
    params:
        flags=provenance_flags,
    log:
        LOGS / "provenance" / "{video}.log",
    resources:
        mem_mb=res("provenance", "mem_mb", 500),
        runtime=res("provenance", "runtime", 10),
    shell:
        "nice-core provenance --name {wildcards.video:q} -o {output.record:q} {params.flags} > {log:q} 2>&1"
