# Proxy generation (for videos without a given proxy) and the proxy check every proxy goes through.
# proxy.generator picks the command: `nice-core swap` (the built-in swapper, which reuses the tracked face)
# or `nice-core external-swap` (the tool under external:, logging to <logs>/proxy/<video>.tool.log).


rule proxy:
    input:
        unpack(proxy_inputs),
    output:
        proxy=work("{video}").proxy,
    log:
        LOGS / "proxy" / "{video}.log",
    benchmark:
        BENCH / "proxy" / "{video}.tsv"
    threads: res(PROXY_RESOURCES, "threads")
    resources:
        mem_mb=res(PROXY_RESOURCES, "mem_mb"),
        runtime=res(PROXY_RESOURCES, "runtime"),
        slurm_extra=res(PROXY_RESOURCES, "slurm_extra") or "",
    params:
        command=proxy_command,
    shell:
        "{params.command} > {log:q} 2>&1"


rule proxy_check:
    input:
        target=video_path,
        proxy=proxy_path,
    output:
        check=work("{video}").proxy_check,
    log:
        LOGS / "proxy_check" / "{video}.log",
    benchmark:
        BENCH / "proxy_check" / "{video}.tsv"
    threads: res("proxy_check", "threads")
    resources:
        mem_mb=res("proxy_check", "mem_mb"),
        runtime=res("proxy_check", "runtime"),
    params:
        flags=flags("proxy"),
    shell:
        "nice-core check-proxy --target {input.target:q} --proxy {input.proxy:q} -o {output.check:q}"
        " {params.flags} > {log:q} 2>&1"
