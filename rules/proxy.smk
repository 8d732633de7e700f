# Proxy generation (for videos without a given proxy) and the proxy check every proxy goes through.


if GENERATOR == "swap":

    rule proxy:
        input:
            target=video_path,
            identity=identity_path,
            store=WORK / "{video}" / "face.h5",
        output:
            proxy=WORK / "{video}" / "proxy.mp4",
        params:
            flags=f"{SWAP_FLAGS} {ENCODE_FLAGS}",
        log:
            LOGS / "proxy" / "{video}.log",
        benchmark:
            BENCH / "proxy" / "{video}.tsv"
        threads: res("proxy", "threads", 1)
        resources:
            mem_mb=res("proxy", "mem_mb", 2000),
            runtime=res("proxy", "runtime", 60),
        shell:
            "nice-core swap --identity {input.identity:q} --target {input.target:q} --store {input.store:q}"
            " -o {output.proxy:q} {params.flags} > {log:q} 2>&1"

else:

    rule proxy:
        input:
            target=video_path,
            identity=identity_path,
        output:
            proxy=WORK / "{video}" / "proxy.mp4",
        params:
            flags=config_flags(ExternalSwapper, config.get("external", {})),
            tool_log=lambda wc: LOGS / "proxy" / f"{wc.video}.tool.log",
        log:
            LOGS / "proxy" / "{video}.log",
        benchmark:
            BENCH / "proxy" / "{video}.tsv"
        threads: res("proxy", "threads", 1)
        resources:
            mem_mb=res("proxy", "mem_mb", 8000),
            runtime=res("proxy", "runtime", 240),
            slurm_extra=res("proxy", "slurm_extra", ""),
        shell:
            "nice-core external-swap {params.flags} --target {input.target:q} --identity {input.identity:q}"
            " -o {output.proxy:q} --log {params.tool_log:q} > {log:q} 2>&1"


rule proxy_check:
    input:
        target=video_path,
        proxy=proxy_path,
    output:
        check=WORK / "{video}" / "proxy_check.json",
    params:
        max_offset=PROXY.get("max_offset", 15),
        correct=("" if PROXY.get("correct_offset", True) else "--no-correct-offset"),
    log:
        LOGS / "proxy_check" / "{video}.log",
    benchmark:
        BENCH / "proxy_check" / "{video}.tsv"
    resources:
        mem_mb=res("proxy_check", "mem_mb", 1000),
        runtime=res("proxy_check", "runtime", 20),
    shell:
        "nice-core check-proxy --target {input.target:q} --proxy {input.proxy:q} -o {output.check:q}"
        " --max-offset {params.max_offset} {params.correct} > {log:q} 2>&1"
