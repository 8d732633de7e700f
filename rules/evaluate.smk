# Metrics for every video: `nice-core eval` writes <work>/<video>/metrics.json for the refined output, with
# the proxy evaluated alongside it (the report's proxy vs. NICe rows). The target's optical flow is computed
# once per target (rule motion) and read by the evaluation of every video of that target.


rule motion:
    input:
        video=target_of,
        probe=target_files("{target}").probe,  # after the probe: a broken target fails there, once
    output:
        motion=temp(target_files("{target}").motion),
    log:
        LOGS / "motion" / "{target}.log",
    benchmark:
        BENCH / "motion" / "{target}.tsv"
    threads: res("motion", "threads")
    resources:
        mem_mb=res("motion", "mem_mb"),
        runtime=res("motion", "runtime"),
    shell:
        "nice-core motion --target {input.video:q} -o {output.motion:q} -q > {log:q} 2>&1"


rule evaluate:
    input:
        target=video_path,
        video=evaluated_video,
        proxy=proxy_path,
        sigma=evaluated_sigma,
        check=work("{video}").proxy_check,
        store=store_of,
        prior3d=work("{video}").prior3d,
        motion=motion_of,
    output:
        metrics=work("{video}").metrics,
    log:
        LOGS / "evaluate" / "{video}.log",
    benchmark:
        BENCH / "evaluate" / "{video}.tsv"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    params:
        extra=eval_extra,
    shell:
        "nice-core eval --target {input.target:q} --video {input.video:q} --proxy {input.proxy:q}"
        " --proxy-check {input.check:q} --store {input.store:q} --prior3d {input.prior3d:q}"
        " --motion {input.motion:q}"
        " {params.extra} --json {output.metrics:q} > {log:q} 2>&1"
