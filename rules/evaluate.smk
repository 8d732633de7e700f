import shlex

# Metrics for every video: `nice-core eval` writes <work>/<video>/metrics.json for the refined output, with
# the proxy evaluated alongside it (the report's proxy vs. NICe rows).


def evaluated_video(wildcards):
    return refined_path(wildcards.video)


def eval_extra(wildcards):
    s = spec(wildcards)
    flags = ["--name", wildcards.video, "--method", s.method, "--subject", str(config.get("face", {}).get("subject", "largest"))]
    if COMPOSITE.get("save_uncertainty", False):
        flags += ["--uncertainty", str(uncertainty_path(wildcards.video))]
    if s.identity is not None:
        flags += ["--identity", str(s.identity)]
    if s.reference is not None:
        flags += ["--reference", str(s.reference)]
    return " ".join(map(shlex.quote, flags))


rule evaluate:
    input:
        target=video_path,
        video=evaluated_video,
        proxy=proxy_path,
        sigma=lambda wc: [uncertainty_path(wc.video)] if COMPOSITE.get("save_uncertainty", False) else [],
        check=WORK / "{video}" / "proxy_check.json",
    output:
        metrics=WORK / "{video}" / "metrics.json",
    params:
        extra=eval_extra,
    log:
        LOGS / "evaluate" / "{video}.log",
    benchmark:
        BENCH / "evaluate" / "{video}.tsv"
    threads: res("evaluate", "threads", 1)
    resources:
        mem_mb=res("evaluate", "mem_mb", 2000),
        runtime=res("evaluate", "runtime", 60),
    shell:
        "nice-core eval --target {input.target:q} --video {input.video:q} --proxy {input.proxy:q}"
        " --proxy-check {input.check:q}"
        " {params.extra}"
        " --json {output.metrics:q} > {log:q} 2>&1"
