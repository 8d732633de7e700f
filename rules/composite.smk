# Re-compositing: the fitted carrier runs on every target crop, pasted back through the target's mask.
# The refined video goes into the results layout (FF++: refined_sequences/<Method>-NICe/<c>/videos/...),
# keyed by its path there; OUTPUT_VIDEO maps it back to the video's name. With composite.save_uncertainty
# the carrier's sigma maps go to <results>/uncertainty/<same path> (outside the layout detectors read).


rule composite:
    input:
        unpack(composite_input),
    output:
        **composite_outputs(),
    log:
        LOGS / "composite" / "{outpath}.log",
    benchmark:
        BENCH / "composite" / "{outpath}.tsv"
    threads: res("composite", "threads")
    resources:
        mem_mb=res("composite", "mem_mb"),
        runtime=res("composite", "runtime"),
    params:
        extra=composite_extra,
        flags=composite_flags,
    shell:
        "nice-core composite --target {input.target:q} --store {input.store:q} --carrier {input.carrier:q}"
        " --proxy-crops {input.proxy_crops:q}"
        " --proxy {input.proxy:q} -o {output.video:q} {params.extra} {params.flags} > {log:q} 2>&1"
